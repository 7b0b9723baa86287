//! Placeholder until the default config.json lands (helper branch `bundle`).
use crate::error::LabError;
use oci_spec::runtime::Spec;

pub fn default_spec(rootless: bool) -> Result<Spec, LabError> {
    let _ = rootless;
    Ok(Spec::default())
}
