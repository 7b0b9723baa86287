//! PLACEHOLDER until the seccomp branch merges (same API).
use crate::error::LabError;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {}

impl Profile {
    pub fn docker_default() -> Profile {
        Profile {}
    }
    pub fn from_file(_path: &Path) -> Result<Profile, LabError> {
        Ok(Profile {})
    }
    pub fn compile(&self, _capabilities: &[&str]) -> Result<Filter, LabError> {
        Ok(Filter {})
    }
}

pub struct Filter {}

impl Filter {
    pub fn instructions(&self) -> usize {
        0
    }
    pub fn load(&self, _narrator: &crate::narrator::Narrator) -> Result<(), LabError> {
        Ok(())
    }
}
