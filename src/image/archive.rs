//! load and import: images from archives and directories.

use super::store::ImageStore;
use super::verbs::{ImportArgs, LoadArgs};
use crate::error::LabError;

pub fn load(_store: &ImageStore, args: &LoadArgs) -> Result<i32, LabError> {
    Err(LabError::Image {
        message: format!("load {}: not built yet", args.input.display()),
        hint: "".into(),
    })
}

pub fn import(_store: &ImageStore, args: &ImportArgs) -> Result<i32, LabError> {
    Err(LabError::Image {
        message: format!("import {}: not built yet", args.source.display()),
        hint: "".into(),
    })
}
