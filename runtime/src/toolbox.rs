//! A set of loaded components, indexed by tool name.

use std::collections::HashMap;
use std::sync::Arc;

use crate::component::ToolComponent;
use crate::error::LoadError;
use crate::spec::{CheckedSpec, ToolSpec};

/// The tools a session can call. Listing reads cached specs; nothing is instantiated.
#[derive(Debug, Default, Clone)]
pub struct Toolbox {
    components: Vec<Arc<ToolComponent>>,
    by_name: HashMap<String, usize>,
    /// Set by [`only`](Toolbox::only): some tools of the components are left out.
    partial: bool,
}

impl Toolbox {
    /// An empty toolbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every tool of `component`, or none of them if any name is taken.
    pub fn add(&mut self, component: Arc<ToolComponent>) -> Result<(), LoadError> {
        for spec in component.specs() {
            if let Some(&index) = self.by_name.get(&spec.name) {
                return Err(LoadError::NameCollision {
                    name: component.name().to_string(),
                    tool: spec.name.clone(),
                    existing: self.components[index].name().to_string(),
                });
            }
        }
        let index = self.components.len();
        for spec in component.specs() {
            self.by_name.insert(spec.name.clone(), index);
        }
        self.components.push(component);
        Ok(())
    }

    /// Every tool's spec, in load order.
    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        let partial = self.partial;
        self.components
            .iter()
            .flat_map(|component| component.specs())
            .filter(move |spec| !partial || self.by_name.contains_key(&spec.name))
    }

    /// A toolbox offering only `tools` (a session that may use fewer tools than
    /// the harness has), or the first name it doesn't hold.
    pub fn only<'a>(&self, tools: impl IntoIterator<Item = &'a str>) -> Result<Toolbox, String> {
        let mut by_name = HashMap::new();
        for tool in tools {
            let &index = self.by_name.get(tool).ok_or_else(|| tool.to_string())?;
            by_name.insert(tool.to_string(), index);
        }
        Ok(Toolbox { components: self.components.clone(), by_name, partial: true })
    }

    /// The spec of `tool`, if present.
    pub fn spec(&self, tool: &str) -> Option<&ToolSpec> {
        self.lookup(tool).map(|(_, checked)| &checked.spec)
    }

    /// The component offering `tool`, if present.
    pub fn component(&self, tool: &str) -> Option<&Arc<ToolComponent>> {
        self.by_name.get(tool).map(|&index| &self.components[index])
    }

    /// The loaded components.
    pub fn components(&self) -> &[Arc<ToolComponent>] {
        &self.components
    }

    pub(crate) fn lookup(&self, tool: &str) -> Option<(&ToolComponent, &CheckedSpec)> {
        let component = &self.components[*self.by_name.get(tool)?];
        Some((component, component.checked_spec(tool)?))
    }
}
