//! Tool specs: what a tool declares about itself, checked when it loads.

use serde::{Deserialize, Serialize};

/// What a tool declares: name, description, input schema and behaviour flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique name, matching `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// What the tool does, written for a model.
    pub description: String,
    /// JSON Schema of the input.
    pub input_schema: serde_json::Value,
    /// The tool never writes; it gets a read-only mount.
    pub read_only: bool,
    /// Running the tool twice with one input equals running it once.
    pub idempotent: bool,
}

/// Checks a tool name against `^[a-zA-Z0-9_-]{1,64}$`, the rule model APIs share.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 64 || !valid_chars {
        return Err(format!("tool name {name:?} does not match ^[a-zA-Z0-9_-]{{1,64}}$"));
    }
    Ok(())
}

/// A spec with its compiled input validator.
pub(crate) struct CheckedSpec {
    pub spec: ToolSpec,
    pub validator: jsonschema::Validator,
}

impl CheckedSpec {
    /// Validates the name and compiles the schema; the error says which.
    pub fn new(spec: ToolSpec) -> Result<Self, String> {
        check_name(&spec.name)?;
        if !spec.input_schema.is_object() {
            return Err(format!("tool `{}` has an input schema that is not a JSON object", spec.name));
        }
        let validator = jsonschema::validator_for(&spec.input_schema)
            .map_err(|err| format!("tool `{}` has an invalid input schema: {err}", spec.name))?;
        Ok(CheckedSpec { spec, validator })
    }

    /// Every way `input` violates the schema, one line each.
    pub fn violations(&self, input: &serde_json::Value) -> Vec<String> {
        self.validator
            .iter_errors(input)
            .map(|err| {
                let path = err.instance_path().to_string();
                let at = if path.is_empty() { "input".to_string() } else { path };
                format!("{at}: {err}")
            })
            .collect()
    }
}

/// The spec given to a plain `wasi:cli/command` component.
pub(crate) fn command_spec(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: format!(
            "Runs the `{name}` program with the given command-line `args` and `stdin`. \
             Returns its stdout, stderr and exit code; a non-zero exit code is an error."
        ),
        input_schema: serde_json::json!({
            "type": "object",
            "properties": {
                "args": { "type": "array", "items": { "type": "string" }, "description": "Command-line arguments, without the program name." },
                "stdin": { "type": "string", "description": "Text fed to standard input." }
            },
            "additionalProperties": false
        }),
        read_only: false,
        idempotent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(check_name("read_file").is_ok());
        assert!(check_name("a-b_C9").is_ok());
        assert!(check_name(&"x".repeat(64)).is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name("dot.name").is_err());
        assert!(check_name("ünïcode").is_err());
    }

    #[test]
    fn schemas_are_checked_at_load() {
        let mut spec = command_spec("tool");
        assert!(CheckedSpec::new(spec.clone()).is_ok());
        spec.input_schema = serde_json::json!({"type": 12});
        let err = CheckedSpec::new(spec.clone()).err().unwrap();
        assert!(err.contains("invalid input schema"), "{err}");
        spec.input_schema = serde_json::json!("a string");
        assert!(CheckedSpec::new(spec).err().unwrap().contains("not a JSON object"));
    }

    #[test]
    fn violations_name_the_path() {
        let checked = CheckedSpec::new(command_spec("tool")).unwrap();
        let violations = checked.violations(&serde_json::json!({"args": [1], "extra": true}));
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations.iter().any(|v| v.starts_with("/args/0")), "{violations:?}");
    }
}
