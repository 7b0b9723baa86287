//! The book never pastes code: every Rust listing is an include of a real
//! source file by anchor, every anchor it names exists, and every terminal
//! transcript of a chapter page comes from a snapshot the tests write.

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

/// The book's pictures are SVG drawn by svgbob from ASCII sources in
/// book/diagrams/NAME.bob, so that they are diffable text and cannot be
/// edited apart from their source. BOOK_UPDATE=1 rewrites the SVGs.
#[test]
fn pictures_are_generated_from_their_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = root.join("book/diagrams");
    let generated = root.join("book/src/generated/diagrams");
    let update = std::env::var_os("BOOK_UPDATE").is_some_and(|v| v == "1");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&sources).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "bob") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let svg = svgbob::to_svg(&std::fs::read_to_string(&path).unwrap());
        let target = generated.join(format!("{name}.svg"));
        if update {
            std::fs::create_dir_all(&generated).unwrap();
            std::fs::write(&target, &svg).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&target).unwrap_or_default(),
            svg,
            "{} is stale: BOOK_UPDATE=1 cargo test --test book",
            target.display()
        );
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
