//! What the lab's pictures for the book (the bench's chart, the scorecard's
//! heat map, chapter 09's anatomy) share: they write SVG by hand, and any
//! text they put in it is escaped here.

/// `text` as SVG character data: `&`, `<` and `>` escaped (XML 1.0, 2.4).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
