//! pull: the OCI distribution API (v2), as Docker Hub and distribution
//! serve it.

use super::store::ImageStore;
use super::verbs::PullArgs;
use crate::error::LabError;

pub fn pull(_store: &ImageStore, args: &PullArgs) -> Result<i32, LabError> {
    Err(LabError::Image {
        message: format!("pull {}: not built yet", args.reference),
        hint: "use load or import".into(),
    })
}
