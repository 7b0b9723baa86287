//! The Korean edition is the English pages with every message replaced from
//! book/po/ko.po (mdbook-i18n-helpers' gettext preprocessor). A message the
//! catalogue lacks, or holds only as fuzzy, would silently stay English, so
//! these tests extract the English messages exactly as mdbook-xgettext does
//! (the same crate and version) and hold the catalogue to them.
//!
//! When an English page changes: `book/po/update` merges the new messages
//! into ko.po (changed ones come back fuzzy); translate them, then drop the
//! fuzzy marks. `.ci/run` also runs `book/po/check`, which holds ko.po to
//! the messages.pot the real mdbook-xgettext writes, so that the extraction
//! here cannot drift from the renderer's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mdbook_i18n_helpers::{
    extract_events, extract_messages, reconstruct_markdown, translate_events,
};
use polib::catalog::Catalog;

fn book_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src")
}

/// A page as mdbook hands it to mdbook-xgettext: its file, untouched, since
/// book.toml runs no preprocessor for that renderer.
struct Page {
    name: String,
    text: String,
}

/// SUMMARY.md first, then the pages it links, in its order.
fn pages_of_the_book() -> Vec<Page> {
    let summary = std::fs::read_to_string(book_source().join("SUMMARY.md")).unwrap();
    let mut pages = vec![Page {
        name: "SUMMARY.md".into(),
        text: summary.clone(),
    }];
    for link in summary.split("](").skip(1) {
        let name = link.split(')').next().unwrap().to_string();
        let text = std::fs::read_to_string(book_source().join(&name))
            .unwrap_or_else(|e| panic!("SUMMARY.md links {name}, which cannot be read: {e}"));
        pages.push(Page { name, text });
    }
    pages
}

/// Every message of the English edition, with the first place it occurs.
/// SUMMARY.md's entries are links, and mdbook-xgettext keeps only their text
/// (what mdbook passes on as the chapter's name).
fn english_messages(pages: &[Page]) -> BTreeMap<String, String> {
    let mut messages = BTreeMap::new();
    for page in pages {
        let extracted = extract_messages(&page.text)
            .unwrap_or_else(|e| panic!("{}: not Markdown the extractor reads: {e:?}", page.name));
        for (line, message) in extracted {
            let mut text = message.message;
            if page.name == "SUMMARY.md" {
                text = link_text(&text);
            }
            messages
                .entry(text)
                .or_insert_with(|| format!("{}:{line}", page.name));
        }
    }
    messages
}

/// `[00 · A plain process](ch00-process.md)` → `00 · A plain process`.
fn link_text(entry: &str) -> String {
    match (entry.strip_prefix('['), entry.rfind("](")) {
        (Some(_), Some(end)) if entry.ends_with(')') => entry[1..end].to_string(),
        _ => entry.to_string(),
    }
}

fn korean_catalogue() -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/po/ko.po");
    polib::po_file::parse(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What keeps the Korean edition from being whole: English messages with no
/// translation, or only a fuzzy one, and translations of messages the
/// English no longer has.
fn gaps(english: &BTreeMap<String, String>, korean: &Catalog) -> Vec<String> {
    let mut gaps = Vec::new();
    let mut translated = BTreeSet::new();
    for message in korean.messages() {
        if message.msgid().is_empty() {
            continue;
        }
        let Some(place) = english.get(message.msgid()) else {
            gaps.push(format!(
                "ko.po translates a message no English page has (stale; book/po/update drops it): {:?}",
                message.msgid()
            ));
            continue;
        };
        let msgstr = message.msgstr().unwrap_or_default();
        if message.is_fuzzy() {
            gaps.push(format!(
                "{place}: fuzzy, the English changed since it was translated: {:?}",
                message.msgid()
            ));
        } else if msgstr.trim().is_empty() {
            gaps.push(format!("{place}: untranslated: {:?}", message.msgid()));
        } else {
            translated.insert(message.msgid().to_string());
        }
    }
    for (msgid, place) in english {
        if !translated.contains(msgid) && korean.find_message(None, msgid, None).is_none() {
            gaps.push(format!(
                "{place}: not in ko.po (run book/po/update): {msgid:?}"
            ));
        }
    }
    gaps
}

#[test]
fn korean_catalogue_translates_every_english_message() {
    let english = english_messages(&pages_of_the_book());
    let gaps = gaps(&english, &korean_catalogue());
    assert!(
        gaps.is_empty(),
        "the Korean edition would show English in {} place(s):\n{}",
        gaps.len(),
        gaps.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The check above is only worth having if an English edit trips it: change
/// one word of one paragraph and the changed paragraph must be reported as
/// untranslated, and its old translation as stale.
#[test]
fn one_changed_english_paragraph_is_reported() {
    let mut pages = pages_of_the_book();
    let page = pages
        .iter_mut()
        .find(|page| page.name == "introduction.md")
        .unwrap();
    let english = english_messages(std::slice::from_ref(page));
    let paragraph = english
        .keys()
        .find(|msgid| msgid.len() > 200 && msgid.contains(" the "))
        .expect("introduction.md has a long paragraph")
        .clone();
    let first_line = page
        .text
        .lines()
        .find(|line| paragraph.starts_with(line.trim()) && line.contains(" the "))
        .expect("the paragraph starts on a line of its own")
        .to_string();
    page.text = page
        .text
        .replacen(&first_line, &first_line.replacen(" the ", " a ", 1), 1);

    let gaps = gaps(&english_messages(&pages), &korean_catalogue());
    let changed = paragraph.replacen(" the ", " a ", 1);
    assert!(
        gaps.iter()
            .any(|gap| gap.contains("not in ko.po") && gap.contains(&format!("{changed:?}"))),
        "the changed paragraph was not reported:\n{}",
        gaps.join("\n")
    );
    assert!(
        gaps.iter()
            .any(|gap| gap.contains("stale") && gap.contains(&format!("{paragraph:?}"))),
        "the old paragraph's translation was not reported as stale:\n{}",
        gaps.join("\n")
    );
}

/// A link to a heading (`page.md#id`) must name an id the heading states
/// (`## Title {#id}`): an id mdbook derives from the title would be derived
/// from the Korean title in the Korean edition, and the link would lead
/// nowhere there.
#[test]
fn every_linked_heading_has_an_explicit_id() {
    let pages = pages_of_the_book();
    let mut missing = Vec::new();
    for page in &pages {
        for link in page.text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            let Some((file, id)) = target.split_once('#') else {
                continue;
            };
            if file.contains("://") {
                continue;
            }
            let file = if file.is_empty() { &page.name } else { file };
            let Some(linked) = pages.iter().find(|p| p.name == file) else {
                missing.push(format!(
                    "{}: links {target}, not a page of the book",
                    page.name
                ));
                continue;
            };
            let stated = linked.text.lines().any(|line| {
                line.starts_with('#') && line.trim_end().ends_with(&format!("{{#{id}}}"))
            });
            if !stated {
                missing.push(format!(
                    "{}: links {target}, whose heading states no {{#{id}}}",
                    page.name
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The scorecard tables a page includes are generated in both languages
/// (`generated/ko/` for Korean): the Korean edition must include the Korean
/// one, which exists. A translation that kept the English path would pass
/// the completeness test above and still show an English table.
#[test]
fn korean_pages_include_the_korean_tables() {
    let generated = book_source().join("generated");
    let mut wrong = Vec::new();
    for message in korean_catalogue().messages() {
        let Some(path) = message
            .msgid()
            .strip_prefix("{{#include generated/")
            .and_then(|rest| rest.strip_suffix("}}"))
        else {
            continue;
        };
        let korean = format!("{{{{#include generated/ko/{path}}}}}");
        if message.msgstr().unwrap_or_default() != korean {
            wrong.push(format!(
                "{:?} should be translated as {korean:?}",
                message.msgid()
            ));
        } else if !generated.join("ko").join(path).is_file() {
            wrong.push(format!("generated/ko/{path} does not exist"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every heading states its id, so that the Korean edition's headings have
/// the English ones' ids: the top bar's link to the other edition keeps the
/// reader's place (`ch01-chroot.html#run-it` in both), and links into a page
/// work in both.
#[test]
fn every_heading_states_its_id() {
    let mut bare = Vec::new();
    for page in pages_of_the_book()
        .iter()
        .filter(|p| p.name != "SUMMARY.md")
    {
        let mut in_code = false;
        for (number, line) in page.text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            let heading = !in_code && line.starts_with('#') && line.contains("# ");
            if heading && !(line.trim_end().ends_with('}') && line.contains(" {#")) {
                bare.push(format!("{}:{}: {line}", page.name, number + 1));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "headings without {{#id}} (use the id mdbook derives from the English title):\n{}",
        bare.join("\n")
    );
}

/// A page as the Korean edition renders it: translated the way the gettext
/// preprocessor does (parse, replace each message, write Markdown back).
fn korean_page(english: &str, catalogue: &Catalog) -> String {
    let events = extract_events(english, None);
    let translated = translate_events(&events, catalogue).expect("the page translates");
    reconstruct_markdown(&translated, None)
        .expect("the translated page is Markdown")
        .0
}

/// How many of each inline element a page renders to, as mdbook parses it.
fn inline_elements(markdown: &str) -> BTreeMap<&'static str, usize> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut counts = BTreeMap::new();
    for event in Parser::new_ext(markdown, options) {
        let kind = match event {
            Event::Start(Tag::Emphasis) => "emphasis",
            Event::Start(Tag::Strong) => "strong",
            Event::Start(Tag::Link { .. }) => "link",
            Event::Start(Tag::Image { .. }) => "image",
            Event::Code(_) => "inline code",
            // What a translation writes where Markdown's markers cannot close.
            Event::InlineHtml(html) if html.as_ref() == "<em>" => "emphasis",
            Event::InlineHtml(html) if html.as_ref() == "<strong>" => "strong",
            _ => continue,
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

/// The Korean edition renders the same emphasis, bold, links, images and
/// inline code as the English one, page by page. Korean puts particles
/// straight after a word, and `_word_를` does not close in CommonMark (the
/// preprocessor writes every emphasis back as `_..._`): the reader would
/// see the underscores. Such a span has to be `<em>word</em>를`.
#[test]
fn korean_pages_render_the_same_inline_markup() {
    let catalogue = korean_catalogue();
    let mut different = Vec::new();
    for page in pages_of_the_book()
        .iter()
        .filter(|p| p.name != "SUMMARY.md")
    {
        let english = inline_elements(&page.text);
        let korean = inline_elements(&korean_page(&page.text, &catalogue));
        if english != korean {
            different.push(format!(
                "{}: English {english:?}, Korean {korean:?}",
                page.name
            ));
        }
    }
    assert!(different.is_empty(), "{}", different.join("\n"));
}
