//! Guest SDK for tool components.
//!
//! A tool is a plain Rust function from a `serde` input type to a result. The SDK
//! derives the input's JSON Schema with `schemars`, parses the host's JSON input and
//! generates the `agent:tool/tool` export glue:
//!
//! ```ignore
//! use tool_sdk::{Tool, export_tools};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Input { text: String }
//!
//! fn shout(input: Input) -> Result<String, String> {
//!     Ok(input.text.to_uppercase())
//! }
//!
//! export_tools!(Tool::new("shout", "Upper-cases `text`.", shout).read_only().idempotent());
//! ```

use std::fmt::Display;

pub mod http;
pub mod walk;
pub mod workspace;

pub use schemars;
pub use serde;
pub use serde_json;

/// Bindings generated from `runtime/wit`; used by [`export_tools!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../runtime/wit",
        world: "tool-component",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "tool_sdk::bindings",
    });
}

use bindings::exports::agent::tool::tool::{ToolOutput, ToolSpec};

/// What a tool function may return: text for the model, or an error shown to the model.
pub trait IntoOutput {
    /// Converts into the content and error flag sent back to the host.
    fn into_output(self) -> (String, bool);
}

impl IntoOutput for String {
    fn into_output(self) -> (String, bool) {
        (self, false)
    }
}

impl<T: Into<String>, E: Display> IntoOutput for Result<T, E> {
    fn into_output(self) -> (String, bool) {
        match self {
            Ok(content) => (content.into(), false),
            Err(err) => (err.to_string(), true),
        }
    }
}

/// A tool's entry point: raw JSON input to content and error flag.
type Runner = Box<dyn Fn(&str) -> (String, bool)>;

/// One tool: its name, description, flags, input schema and function.
pub struct Tool {
    name: &'static str,
    description: &'static str,
    read_only: bool,
    idempotent: bool,
    schema: fn() -> String,
    run: Runner,
}

impl Tool {
    /// A tool named `name` that runs `func` on its JSON input parsed as `I`.
    pub fn new<I, O>(name: &'static str, description: &'static str, func: fn(I) -> O) -> Self
    where
        I: serde::de::DeserializeOwned + schemars::JsonSchema + 'static,
        O: IntoOutput + 'static,
    {
        Tool {
            name,
            description,
            read_only: false,
            idempotent: false,
            schema: || schemars::schema_for!(I).as_value().to_string(),
            run: Box::new(move |input| match serde_json::from_str::<I>(input) {
                Ok(parsed) => func(parsed).into_output(),
                Err(err) => (format!("invalid input: {err}"), true),
            }),
        }
    }

    /// Declares that the tool never writes; the host then mounts `/workspace` read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Declares that running the tool twice with one input equals running it once.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// Describes `tools` for the host; called by the glue [`export_tools!`] generates.
#[doc(hidden)]
pub fn describe(tools: &[Tool]) -> Vec<ToolSpec> {
    tools
        .iter()
        .map(|tool| ToolSpec {
            name: tool.name.to_string(),
            description: tool.description.to_string(),
            input_schema: (tool.schema)(),
            read_only: tool.read_only,
            idempotent: tool.idempotent,
        })
        .collect()
}

/// Runs the tool called `name`; called by the glue [`export_tools!`] generates.
#[doc(hidden)]
pub fn call(tools: &[Tool], name: &str, input: &str) -> ToolOutput {
    let (content, is_error) = match tools.iter().find(|tool| tool.name == name) {
        Some(tool) => (tool.run)(input),
        None => (format!("this component has no tool named `{name}`"), true),
    };
    ToolOutput { content, is_error }
}

/// Exports the listed [`Tool`]s as this component's `agent:tool/tool` implementation.
#[macro_export]
macro_rules! export_tools {
    ($($tool:expr),+ $(,)?) => {
        fn __tool_sdk_tools() -> ::std::vec::Vec<$crate::Tool> {
            ::std::vec![$($tool),+]
        }

        struct __ToolSdkComponent;

        impl $crate::bindings::exports::agent::tool::tool::Guest for __ToolSdkComponent {
            fn describe() -> ::std::vec::Vec<$crate::bindings::exports::agent::tool::tool::ToolSpec> {
                $crate::describe(&__tool_sdk_tools())
            }

            fn call(
                name: ::std::string::String,
                input: ::std::string::String,
            ) -> $crate::bindings::exports::agent::tool::tool::ToolOutput {
                $crate::call(&__tool_sdk_tools(), &name, &input)
            }
        }

        $crate::bindings::export!(__ToolSdkComponent with_types_in $crate::bindings);
    };
}
