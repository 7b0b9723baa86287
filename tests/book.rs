//! The book never pastes code: every Rust listing is an include of a real
//! source file by anchor, every anchor it names exists, and every terminal
//! transcript of a chapter page comes from a snapshot the tests write.

mod common;

use std::path::{Path, PathBuf};

fn book_pages() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages
}

/// Fenced blocks as (info string, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// `{{#include PATH:ANCHOR}}` or `{{#include PATH:START:}}`, resolved.
fn check_include(page: &Path, directive: &str) {
    let inner = directive
        .trim()
        .strip_prefix("{{#include ")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("{}: not an include: {directive}", page.display()));
    let mut parts = inner.splitn(2, ':');
    let file = page.parent().unwrap().join(parts.next().unwrap());
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: include {} unreadable: {e}",
            page.display(),
            file.display()
        )
    });
    if let Some(selector) = parts.next() {
        let first = selector.split(':').next().unwrap();
        if first.parse::<usize>().is_err() {
            assert!(
                text.contains(&format!("ANCHOR: {first}"))
                    && text.contains(&format!("ANCHOR_END: {first}")),
                "{}: anchor {first} missing in {}",
                page.display(),
                file.display()
            );
        }
    }
}

#[test]
fn every_rust_listing_is_an_include_of_real_code() {
    let mut listings = 0;
    for page in book_pages() {
        let markdown = std::fs::read_to_string(&page).unwrap();
        for (info, body) in fenced_blocks(&markdown) {
            if info.starts_with("rust") {
                listings += 1;
                for line in body.lines().filter(|line| !line.trim().is_empty()) {
                    check_include(&page, line);
                }
            }
        }
    }
    assert!(
        listings >= 6,
        "the chapter pages should show code, found {listings} listings"
    );
}

#[test]
fn chapter_transcripts_come_from_snapshots() {
    for page in book_pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ch") {
            continue;
        }
        let markdown = std::fs::read_to_string(&page).unwrap();
        for (info, body) in fenced_blocks(&markdown) {
            if info == "console" || info == "text" && body.contains("{{#include") {
                for line in body.lines().filter(|line| !line.trim().is_empty()) {
                    assert!(
                        line.contains("tests/snapshots/"),
                        "{name}: pasted output: {line}"
                    );
                    check_include(&page, line);
                }
            }
        }
    }
}

/// A file a page or the README tells the reader to open must exist: when
/// code moves, the prose that points at it moves too.
#[test]
fn every_source_file_the_prose_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts: Vec<PathBuf> = book_pages();
    texts.push(root.join("README.md"));
    let mut missing = Vec::new();
    for text_path in texts {
        let text = std::fs::read_to_string(&text_path).unwrap();
        for (start, _) in text.match_indices("src/") {
            let preceded_by_path =
                text[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if preceded_by_path
                || text[..start].ends_with("book/")
                || text[..start].ends_with("../")
            {
                continue; // book/src/..., or an include (checked by its own test)
            }
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "/_.-".contains(*c))
                .collect();
            let name = name.trim_end_matches('.');
            if name.ends_with(".rs") && !root.join(name).is_file() {
                missing.push(format!("{}: {name}", text_path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the prose names files that do not exist:\n{}",
        missing.join("\n")
    );
}

/// A generated file of the book holds what the lab computes today;
/// BOOK_UPDATE=1 rewrites it.
fn assert_generated(target: &Path, expected: &str) {
    if std::env::var_os("BOOK_UPDATE").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, expected).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(target).unwrap_or_default(),
        expected,
        "{} is stale: BOOK_UPDATE=1 cargo test --test book",
        target.display()
    );
}

/// The book's pictures are SVG drawn by svgbob from ASCII sources in
/// book/diagrams/NAME.bob, so that they are diffable text and cannot be
/// edited apart from their source. BOOK_UPDATE=1 rewrites the SVGs.
#[test]
fn pictures_are_generated_from_their_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = root.join("book/diagrams");
    let generated = root.join("book/src/generated/diagrams");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&sources).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "bob") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let svg = svgbob::to_svg(&std::fs::read_to_string(&path).unwrap());
        assert_generated(&generated.join(format!("{name}.svg")), &svg);
        names.push(name);
    }
    // Every picture is shown somewhere, and every picture shown has a source.
    let pages: String = book_pages()
        .iter()
        .map(|page| std::fs::read_to_string(page).unwrap())
        .collect();
    for name in &names {
        assert!(
            pages.contains(&format!("generated/diagrams/{name}.svg")),
            "book/diagrams/{name}.bob is drawn but no page shows it"
        );
    }
    for shown in pages.split("generated/diagrams/").skip(1) {
        let name = shown.split(".svg").next().unwrap();
        assert!(
            names.iter().any(|n| n == name),
            "a page shows generated/diagrams/{name}.svg, which has no book/diagrams/{name}.bob"
        );
    }
}

/// The scorecard page's heat map is the picture of the table next to it:
/// `lab tour --book` writes both from one matrix, and this draws the picture
/// again from the table on disk (whose freshness against a real tour
/// `tests/scorecard.rs` checks). BOOK_UPDATE=1 rewrites the SVG.
#[test]
fn scorecard_heat_map_is_drawn_from_the_table() {
    use container_lab::lab::scorecard::Matrix;
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated");
    let table = std::fs::read_to_string(generated.join("scorecard.md")).unwrap();
    let svg = Matrix::from_markdown(&table)
        .expect("book/src/generated/scorecard.md is a scorecard table")
        .heat_map();
    assert_generated(&generated.join("scorecard.svg"), &svg);
    let page = std::fs::read_to_string(generated.join("../scorecard.md")).unwrap();
    assert!(
        page.contains("](generated/scorecard.svg)"),
        "the scorecard page does not show its heat map"
    );
}

/// Each chapter's scorecard section and the Korean edition's tables are
/// the scorecard page's matrix, as `lab tour --book` writes them all from
/// one run: redrawn here from the table on disk, in both languages.
/// BOOK_UPDATE=1 rewrites the Korean ones.
#[test]
fn chapter_tables_and_korean_tables_come_from_the_matrix() {
    use container_lab::lab::scorecard::{Language, Matrix};
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated");
    let table = std::fs::read_to_string(generated.join("scorecard.md")).unwrap();
    let matrix = Matrix::from_markdown(&table).expect("scorecard.md is a scorecard table");
    for column in &matrix.columns {
        let name = format!("scorecard-ch{}.md", column.chapter);
        assert_eq!(
            std::fs::read_to_string(generated.join(&name)).unwrap_or_default(),
            matrix
                .markdown_diff_in(&column.chapter, Language::English)
                .unwrap(),
            "book/src/generated/{name} is not the matrix's column: run book/update-generated.sh"
        );
        assert_generated(
            &generated.join("ko").join(&name),
            &matrix
                .markdown_diff_in(&column.chapter, Language::Korean)
                .unwrap(),
        );
    }
    assert_generated(
        &generated.join("ko/scorecard.md"),
        &matrix.markdown_in(Language::Korean),
    );
}

/// Chapter 09's picture of a container's layers is drawn from the facts
/// beside it: `lab anatomy --book` writes both from one reading of a real
/// container, and this draws the picture again from the facts on disk
/// (whose freshness against a real container `tests/anatomy.rs` checks).
/// BOOK_UPDATE=1 rewrites the SVG.
#[test]
fn ch09_anatomy_is_drawn_from_the_facts() {
    use container_lab::lab::anatomy::Anatomy;
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated");
    let json = std::fs::read_to_string(generated.join("ch09-anatomy.json")).unwrap();
    let anatomy: Anatomy =
        serde_json::from_str(&json).expect("book/src/generated/ch09-anatomy.json is an Anatomy");
    assert_generated(&generated.join("ch09-anatomy.svg"), &anatomy.svg());
    let page = std::fs::read_to_string(generated.join("../ch09-hardening.md")).unwrap();
    assert!(
        page.contains("](generated/ch09-anatomy.svg)"),
        "the chapter 09 page does not show its container's anatomy"
    );
}

/// What `--help` says a command takes: its long and short flags, and which
/// of them take a value (`--net <MODE>`, `-p, --publish <HOST:CONTAINER>`).
struct Help {
    text: String,
    flags: Vec<String>,
    with_value: Vec<String>,
}

fn help_of(words: &[&str]) -> Help {
    let output = std::process::Command::new(common::bin(words[0]))
        .args(&words[1..])
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut flags = vec!["--help".to_string(), "-h".to_string()];
    let mut with_value = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let takes_value = line.contains(" <") || line.contains("=<");
        for word in line.split([' ', ',', '=']) {
            if word.starts_with('-') && word.len() > 1 {
                flags.push(word.to_string());
                if takes_value {
                    with_value.push(word.to_string());
                }
            }
        }
    }
    Help {
        text,
        flags,
        with_value,
    }
}

/// Command lines on a page: the lines of its shell blocks and its inline
/// code spans.
fn command_lines(markdown: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (info, body) in fenced_blocks(markdown) {
        if ["sh", "bash", "console", "shell"].contains(&info.as_str()) {
            lines.extend(body.lines().map(str::to_string));
        }
    }
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            lines.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    lines
}

/// Every flag a page gives one of the lab's binaries, and every `lab`
/// subcommand, is one that binary's `--help` lists: a renamed or removed
/// flag makes this fail, not a student.
#[test]
fn flags_and_subcommands_the_book_names_exist() {
    let mut helps: std::collections::HashMap<Vec<String>, Help> = Default::default();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut pages = book_pages();
    pages.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    for page in pages {
        let markdown = std::fs::read_to_string(&page).unwrap();
        for line in command_lines(&markdown) {
            // The command being read (binary, subcommand) and whether the
            // next word is a flag's value.
            let mut current: Option<Vec<String>> = None;
            let mut skip_value = false;
            for word in line.split_whitespace() {
                let word = word.trim_matches(|c| c == '\'' || c == '"' || c == '(' || c == ')');
                if skip_value {
                    skip_value = false;
                    continue;
                }
                let name = word.rsplit('/').next().unwrap_or(word);
                if common::BINARIES.contains(&name) {
                    current = Some(vec![name.to_string()]);
                    continue;
                }
                let Some(command) = current.clone() else {
                    continue;
                };
                if ["|", "&&", ";", "||", ">", "2>&1", "&"].contains(&word) {
                    current = None;
                    continue;
                }
                let words: Vec<&str> = command.iter().map(String::as_str).collect();
                let help = helps
                    .entry(command.clone())
                    .or_insert_with(|| help_of(&words));
                if word.starts_with('-') && word.len() > 1 && word != "--" {
                    let flag = word.split('=').next().unwrap();
                    checked += 1;
                    if !help.flags.iter().any(|f| f == flag) {
                        wrong.push(format!(
                            "{}: `{}` has no {flag} (in: {line})",
                            page.display(),
                            command.join(" ")
                        ));
                    }
                    skip_value = !word.contains('=') && help.with_value.iter().any(|f| f == flag);
                } else if command.len() == 1
                    && help.text.contains("\nCommands:")
                    && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                {
                    // The first word of `lab` (and of ch07 on) is a
                    // subcommand, and flags after it are its own.
                    checked += 1;
                    let listed = help
                        .text
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{word} ")));
                    if listed {
                        current = Some(vec![command[0].clone(), word.to_string()]);
                    } else {
                        wrong.push(format!(
                            "{}: `{}` has no subcommand {word} (in: {line})",
                            page.display(),
                            command[0]
                        ));
                        current = None;
                    }
                } else {
                    // A positional word (the rootfs, the command): what
                    // follows belongs to the container's command.
                    current = None;
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} flags found: is the parser reading the pages?"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every written chapter page has the shape book/src/style.md describes:
/// the crux first, the scorecard diff, exercises, a summary last, and no
/// more than about 5,000 words (an hour's lesson).
#[test]
fn chapter_pages_have_the_lessons_shape() {
    let mut problems = Vec::new();
    for page in book_pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let Some(number) = name.strip_prefix("ch").and_then(|rest| rest.get(..2)) else {
            continue;
        };
        let markdown = std::fs::read_to_string(&page).unwrap();
        // Chapters not written yet are a short plan, not a lesson.
        if !markdown.contains(&format!("generated/scorecard-ch{number}.md")) {
            continue;
        }
        let body: Vec<&str> = markdown
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .collect();
        if !body.first().is_some_and(|l| l.starts_with("> **Crux.**")) {
            problems.push(format!(
                "{name}: does not start with its crux (> **Crux.** ...)"
            ));
        }
        // A heading's title, without the id it states (`## Summary {#summary}`).
        let headings: Vec<&str> = markdown
            .lines()
            .filter(|l| l.starts_with("## "))
            .map(|l| l.split(" {#").next().unwrap_or(l))
            .collect();
        for wanted in ["## Exercises", "## Summary"] {
            if !headings.contains(&wanted) {
                problems.push(format!("{name}: no {wanted}"));
            }
        }
        if headings.last() != Some(&"## Summary") {
            problems.push(format!("{name}: the summary is not last"));
        }
        let words = markdown.split_whitespace().count();
        if words > 5_200 {
            problems.push(format!("{name}: {words} words, more than an hour's lesson"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
