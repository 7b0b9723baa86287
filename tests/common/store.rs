//! An image store of one test (CONTAINER_LAB_STORAGE, podman's --root),
//! and ch08-images run against it. Used by ch08_load and ch08_ship.

use super::{Scratch, bin, code, stderr, stdout};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

const CH: &str = "ch08-images";

/// An image store of one test, removed with its scratch directory.
pub struct Store {
    pub dir: Scratch,
}

impl Store {
    pub fn new(test: &str) -> Store {
        Store {
            dir: Scratch::new(&format!("store-{test}")),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("storage")
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        Command::new(bin(CH))
            .env("CONTAINER_LAB_STORAGE", self.root())
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("run ch08-images")
    }

    /// Run a verb that must succeed; its stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let output = self.run(args);
        assert!(
            output.status.success(),
            "ch08-images {} failed ({}):\n{}",
            shown.join(" "),
            code(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    pub fn inspect(&self, image: &str) -> Value {
        let text = self.ok(["image", "inspect", image]);
        let all: Value = serde_json::from_str(&text).expect("inspect prints JSON");
        all[0].clone()
    }

    /// The image's layer directories, top first (overlayfs's lowerdir order).
    pub fn layer_dirs_top_first(&self, image: &str) -> Vec<PathBuf> {
        let inspected = self.inspect(image);
        let mut dirs: Vec<PathBuf> = inspected["LayerDirs"]
            .as_array()
            .expect("LayerDirs")
            .iter()
            .map(|d| PathBuf::from(d.as_str().unwrap()))
            .collect();
        dirs.reverse();
        dirs
    }

    /// Names in one of the store's directories (layers, blobs/sha256, tmp).
    pub fn names_in(&self, dir: &str) -> Vec<String> {
        std::fs::read_dir(self.root().join(dir))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing was kept: no layer, no half-unpacked one, no blob, no
    /// staging file, no image.
    pub fn assert_empty(&self, after: &str) {
        for dir in ["layers", "blobs/sha256", "tmp", "images"] {
            let left = self.names_in(dir);
            assert!(
                left.is_empty(),
                "{after}: the store's {dir}/ holds {left:?}"
            );
        }
    }
}
