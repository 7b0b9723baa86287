//! The scorecard as a picture: checks down, chapters across, one colored
//! cell per verdict. Drawn from the same `Matrix` as the Markdown table, by
//! `lab tour --book`, so that the two cannot disagree; `tests/book.rs` draws
//! it again from the table on disk and compares.

use super::scorecard::{CHECKS, Matrix, Verdict};
use super::svg::escape;

const LABEL_WIDTH: f64 = 190.0;
const CELL_WIDTH: f64 = 36.0;
const CELL_HEIGHT: f64 = 13.0;
const GROUP_HEIGHT: f64 = 17.0;
const HEADER_HEIGHT: f64 = 24.0;
const LEGEND_HEIGHT: f64 = 34.0;

fn fill(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Isolated => "#2e7d32",
        Verdict::Leaks => "#c62828",
        Verdict::NotApplicable => "#bdbdbd",
    }
}

/// A LEAKS cell also carries a cross, so that the picture reads without
/// telling red from green.
fn cross(x: f64, y: f64) -> String {
    let (cx, cy, r) = (x + CELL_WIDTH / 2.0, y + CELL_HEIGHT / 2.0, 3.5);
    format!(
        "<path d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"#fff\" stroke-width=\"1.5\"/>",
        cx - r,
        cy - r,
        cx + r,
        cy + r,
        cx - r,
        cy + r,
        cx + r,
        cy - r
    )
}

impl Matrix {
    /// The heat map as SVG.
    pub fn heat_map(&self) -> String {
        let groups = CHECKS
            .iter()
            .enumerate()
            .filter(|(i, check)| *i == 0 || CHECKS[i - 1].group != check.group)
            .count();
        let grid_height = CHECKS.len() as f64 * CELL_HEIGHT + groups as f64 * GROUP_HEIGHT;
        let width = LABEL_WIDTH + self.columns.len() as f64 * CELL_WIDTH + 8.0;
        let height = HEADER_HEIGHT + grid_height + LEGEND_HEIGHT;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\" \
             role=\"img\" aria-label=\"The scorecard: {} checks down, {} chapters across\">\n",
            CHECKS.len(),
            self.columns.len()
        );
        for (i, column) in self.columns.iter().enumerate() {
            let x = LABEL_WIDTH + (i as f64 + 0.5) * CELL_WIDTH;
            svg.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">ch{}</text>\n",
                escape(&column.chapter)
            ));
        }
        let mut y = HEADER_HEIGHT;
        let mut group = "";
        for check in CHECKS {
            if check.group != group {
                group = check.group;
                svg.push_str(&format!(
                    "<text x=\"2\" y=\"{:.1}\" font-weight=\"bold\" fill=\"#555\">{}</text>\n",
                    y + GROUP_HEIGHT - 4.0,
                    escape(group)
                ));
                y += GROUP_HEIGHT;
            }
            svg.push_str(&format!(
                "<text x=\"10\" y=\"{:.1}\" font-family=\"monospace\" font-size=\"10\">{}</text>\n",
                y + CELL_HEIGHT - 3.0,
                escape(check.id)
            ));
            for (i, column) in self.columns.iter().enumerate() {
                let verdict = column.verdict(check.id).unwrap_or(Verdict::NotApplicable);
                let x = LABEL_WIDTH + i as f64 * CELL_WIDTH;
                svg.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{} in ch{}: {}</title></rect>",
                    x + 1.0,
                    y + 0.5,
                    CELL_WIDTH - 2.0,
                    CELL_HEIGHT - 1.0,
                    fill(verdict),
                    escape(check.id),
                    escape(&column.chapter),
                    verdict.label()
                ));
                if verdict == Verdict::Leaks {
                    svg.push_str(&cross(x, y));
                }
                svg.push('\n');
            }
            y += CELL_HEIGHT;
        }
        let legend_y = y + 14.0;
        let mut x = LABEL_WIDTH;
        for verdict in [Verdict::Isolated, Verdict::Leaks, Verdict::NotApplicable] {
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                legend_y,
                CELL_WIDTH - 2.0,
                CELL_HEIGHT - 1.0,
                fill(verdict)
            ));
            if verdict == Verdict::Leaks {
                svg.push_str(&cross(x - 1.0, legend_y - 0.5));
            }
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                x + CELL_WIDTH + 2.0,
                legend_y + CELL_HEIGHT - 3.0,
                verdict.label()
            ));
            x += CELL_WIDTH + 80.0;
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::scorecard::{Column, Finding};

    fn matrix() -> Matrix {
        let column = |chapter: &str, verdict| Column {
            chapter: chapter.into(),
            binary: format!("ch{chapter}"),
            findings: CHECKS
                .iter()
                .map(|check| Finding::new(check.id, verdict, ""))
                .collect(),
        };
        Matrix {
            columns: vec![
                column("00", Verdict::Leaks),
                column("01", Verdict::Isolated),
            ],
        }
    }

    #[test]
    fn one_cell_per_check_and_chapter_with_its_verdict() {
        let svg = matrix().heat_map();
        assert_eq!(svg.matches("<title>").count(), CHECKS.len() * 2);
        assert!(svg.contains(&format!("<title>{} in ch00: LEAKS</title>", CHECKS[0].id)));
        assert!(svg.contains(&format!(
            "<title>{} in ch01: ISOLATED</title>",
            CHECKS[0].id
        )));
        // Every LEAKS cell and the legend's carry a cross.
        assert_eq!(svg.matches("stroke=\"#fff\"").count(), CHECKS.len() + 1);
    }

    #[test]
    fn a_missing_verdict_is_drawn_as_not_applicable() {
        let mut matrix = matrix();
        matrix.columns[1].findings.remove(0);
        let svg = matrix.heat_map();
        assert!(svg.contains(&format!("<title>{} in ch01: N/A</title>", CHECKS[0].id)));
    }
}
