//! Containerfile (Dockerfile) instructions: parsed, and applied to an
//! image's run config.

use super::spec::RunConfig;
use crate::error::LabError;

/// A change to a run config, as `commit -c` takes it: one instruction.
pub type ConfigChange = Box<dyn Fn(&mut RunConfig)>;

/// `commit -c 'CMD ["/bin/sh"]'`: one config instruction.
pub fn config_change(text: &str) -> Result<ConfigChange, LabError> {
    Err(LabError::Usage {
        message: format!("-c {text:?}: config changes are not parsed yet"),
    })
}
