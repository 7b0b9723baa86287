//! `--log FILE --log-format json|text`: where engines read a runtime's
//! errors. containerd's shim and conmon pass a file and show its last
//! `error` line to the user when a call fails, so every failure is also
//! appended there, one line each, as runc writes them.

use crate::error::LabError;
use crate::runtime::state::{now, rfc3339};
use std::io::Write;
use std::path::PathBuf;

/// Where errors go besides stderr.
pub struct Log {
    pub file: Option<PathBuf>,
    pub json: bool,
}

impl Log {
    /// The line for `message` at `level`, in the asked format.
    pub fn line(&self, level: &str, message: &str) -> String {
        let time = rfc3339(now());
        match self.json {
            true => serde_json::json!({ "level": level, "msg": message, "time": time }).to_string(),
            false => format!("time={time:?} level={level} msg={message:?}"),
        }
    }

    /// Append `error` (and its hint) to the log file, if there is one.
    pub fn error(&self, error: &LabError) {
        let Some(file) = &self.file else {
            return;
        };
        let mut message = error.to_string();
        if let Some(hint) = error.hint() {
            message.push_str(&format!(" ({hint})"));
        }
        let line = self.line("error", &message);
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = writeln!(log, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_what_containerd_parses() {
        let log = Log {
            file: None,
            json: true,
        };
        let line: serde_json::Value = serde_json::from_str(&log.line("error", "no \"x\"")).unwrap();
        assert_eq!(line["level"], "error");
        assert_eq!(line["msg"], "no \"x\"");
        assert!(line["time"].as_str().unwrap().contains('T'));
        let text = Log {
            file: None,
            json: false,
        }
        .line("error", "boom");
        assert!(text.contains("level=error msg=\"boom\""), "{text}");
    }
}
