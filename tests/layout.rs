//! The layout of `src/` is part of what the lab teaches (lib.rs and the book's
//! "How the code is laid out" page): the runtime in one folder, the
//! instruments in another, the shared plumbing at the top, and dependencies
//! that point one way. These tests read the sources and fail when that stops
//! being true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file, relative to `src/` (`runtime/net.rs`), without
/// the binaries in `src/bin`.
fn library_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                if relative != "bin" {
                    walk(&path, base, out);
                }
            } else if relative.ends_with(".rs") {
                out.push(relative);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src_dir(), &src_dir(), &mut files);
    files.sort();
    files
}

/// The source without comments, so that prose naming a module (as this
/// project's module comments do) is not taken for a use of it.
fn code_of(file: &str) -> String {
    let text = std::fs::read_to_string(src_dir().join(file)).unwrap();
    text.lines()
        .map(|line| match line.find("//") {
            Some(start) => &line[..start],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names after `crate::`, with `{a, b::c}` groups
/// expanded one level: `crate::runtime::{fork, sync::Handshake}` gives
/// `runtime::fork` and `runtime::sync::Handshake`.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let rest = &code[start + "crate::".len()..];
        if start > 0 && code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `container_lab::` or `my_crate::`, not `crate::`
        }
        let mut prefix = Vec::new();
        let mut chars = rest;
        loop {
            let ident: String = chars
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if ident.is_empty() {
                break;
            }
            chars = &chars[ident.len()..];
            prefix.push(ident);
            if let Some(after) = chars.strip_prefix("::") {
                chars = after;
            } else {
                break;
            }
        }
        if let Some(group) = chars.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if item.is_empty() || item == "self" {
                    continue;
                }
                let mut path = prefix.clone();
                path.extend(item.split("::").map(|s| s.trim().to_string()));
                paths.push(path);
            }
        }
        if !prefix.is_empty() {
            paths.push(prefix);
        }
    }
    paths
}

/// The file a module path lands in: the longest prefix that is a file.
fn file_of(path: &[String], files: &BTreeSet<String>) -> Option<String> {
    (1..=path.len()).rev().find_map(|len| {
        let joined = path[..len].join("/");
        [format!("{joined}.rs"), format!("{joined}/mod.rs")]
            .into_iter()
            .find(|candidate| files.contains(candidate))
    })
}

/// file -> the other files it names.
fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeSet<String> = library_files().into_iter().collect();
    files
        .iter()
        .map(|file| {
            let targets = crate_paths(&code_of(file))
                .iter()
                .filter_map(|path| file_of(path, &files))
                .filter(|target| target != file)
                .collect();
            (file.clone(), targets)
        })
        .collect()
}

#[test]
fn the_parser_finds_grouped_and_nested_uses() {
    let code = "use crate::runtime::{fork, sync::Handshake};\nlet x = crate::error::errno_of(e);\ncontainer_lab::lab::tour";
    let paths: Vec<String> = crate_paths(code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "runtime::fork",
            "runtime::sync::Handshake",
            "runtime",
            "error::errno_of"
        ]
    );
}

#[test]
fn at_most_eight_files_at_the_top_of_src() {
    let top: Vec<String> = library_files()
        .into_iter()
        .filter(|file| !file.contains('/'))
        .collect();
    assert!(
        top.len() <= 8,
        "src/ holds {} files at its top level: {top:?}; put the new one in a folder",
        top.len()
    );
}

#[test]
fn the_runtime_never_names_the_instruments_or_the_flags() {
    let graph = dependency_graph();
    let mut offenders = Vec::new();
    for (file, targets) in graph
        .iter()
        .filter(|(file, _)| file.starts_with("runtime/"))
    {
        for target in targets {
            if target.starts_with("lab/") || target.starts_with("image/") || target == "cli.rs" {
                offenders.push(format!("src/{file} uses src/{target}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the runtime must not depend on the lab, the image side or the CLI:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_shared_plumbing_names_neither_the_runtime_nor_the_lab() {
    // `cli` turns flags into the runtime's types, so it may name the runtime;
    // nothing at the top may name the instruments.
    let graph = dependency_graph();
    let mut offenders = Vec::new();
    for (file, targets) in graph.iter().filter(|(file, _)| !file.contains('/')) {
        for target in targets {
            let runtime_from_plumbing = target.starts_with("runtime/") && file != "cli.rs";
            if target.starts_with("lab/") || runtime_from_plumbing {
                offenders.push(format!("src/{file} uses src/{target}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn no_two_files_depend_on_each_other_in_a_circle() {
    let graph = dependency_graph();
    // Depth-first search; a file met again while still on the stack closes a cycle.
    fn visit(
        file: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(position) = stack.iter().position(|f| f == file) {
            let mut cycle = stack[position..].to_vec();
            cycle.push(file.to_string());
            return Some(cycle);
        }
        if done.contains(file) {
            return None;
        }
        stack.push(file.to_string());
        for target in graph.get(file).into_iter().flatten() {
            if let Some(cycle) = visit(target, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(file.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        if let Some(cycle) = visit(file, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn every_folder_opens_with_a_map_of_its_files() {
    for folder in ["runtime", "lab", "image", "oci"] {
        let map = std::fs::read_to_string(src_dir().join(folder).join("mod.rs")).unwrap();
        for file in library_files() {
            let Some(name) = file
                .strip_prefix(&format!("{folder}/"))
                .and_then(|name| name.strip_suffix(".rs"))
            else {
                continue;
            };
            if name != "mod" {
                assert!(
                    map.contains(&format!("//! | `{name}` |")),
                    "src/{folder}/mod.rs: the table of files lacks `{name}`"
                );
            }
        }
    }
}
