//! The parsed pipeline, its steps and the execution plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Problem, execution_order};

/// What a step does, as written in OML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepMode {
    /// Extract data into the step table (component mode `extract`).
    Read,
    /// Write the table of an upstream step to a destination (component mode `write`).
    Write,
    /// Compute a new table from upstream tables (component mode `transform`).
    Transform,
}

impl StepMode {
    /// The OML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Transform => "transform",
        }
    }

    /// The component mode this OML mode maps to (`read` -> `extract`).
    pub fn component_mode(self) -> &'static str {
        match self {
            Self::Read => "extract",
            Self::Write => "write",
            Self::Transform => "transform",
        }
    }

    /// Parses an OML mode; the component mode `extract` is accepted for `read`, as Osiris
    /// does.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" | "extract" => Some(Self::Read),
            "write" => Some(Self::Write),
            "transform" => Some(Self::Transform),
            _ => None,
        }
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique id; also the name of the step's table in the run database.
    pub id: String,
    /// Component name, e.g. `filesystem.csv_extractor`.
    pub component: String,
    /// What the step does.
    pub mode: StepMode,
    /// Position of the step in the pipeline file (for JSON pointers in messages).
    #[serde(skip)]
    pub index: usize,
    /// Upstream steps that must finish first: those listed in `needs`, those referenced in
    /// `inputs`, or (with neither) the nearest earlier step that produces a table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Upstream steps whose tables this step reads, when its `inputs` name them
    /// (`df: "${extract.df}"`). Empty: every step in `needs` that produced a table (a step
    /// that produced none, such as a writer, only orders the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// The component's configuration.
    #[serde(default)]
    pub config: Map<String, Value>,
}

/// A parsed pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// `oml_version` as written.
    pub oml_version: String,
    /// Pipeline name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Optional free-form metadata, copied into the manifest.
    pub metadata: Option<Value>,
    /// Steps in file order.
    pub steps: Vec<Step>,
    /// Effective parameters after defaults, environment, profile and command line.
    pub params: BTreeMap<String, Value>,
    /// The active profile, if any.
    pub profile: Option<String>,
    /// Ids of steps whose `component` or `mode` could not be read (already reported);
    /// component-level checks skip them rather than report follow-up errors.
    pub incomplete: std::collections::BTreeSet<String>,
}

/// The execution plan: the pipeline's steps in a valid order. Written as `manifest.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Pipeline name.
    pub name: String,
    /// OML version of the source.
    pub oml_version: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Steps in execution order: every step comes after the steps it needs.
    pub steps: Vec<Step>,
}

impl Pipeline {
    /// The execution plan: steps in dependency order.
    pub fn plan(&self) -> Result<Plan, Problem> {
        let order = execution_order(&self.steps)?;
        Ok(Plan {
            name: self.name.clone(),
            oml_version: self.oml_version.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            steps: order.into_iter().map(|i| self.steps[i].clone()).collect(),
        })
    }
}

impl Plan {
    /// The plan as YAML (the session's `manifest.yaml`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a plan always serializes")
    }
}
