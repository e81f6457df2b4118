//! OpenAPI import and export for REST APIs, in the dialect Amazon API Gateway speaks.
//!
//! Users bring their APIs to Portico as OpenAPI 3.0 or Swagger 2.0 documents carrying AWS's
//! `x-amazon-apigateway-*` extensions, exactly as they feed them to `ImportRestApi`. This module
//! turns such a document into an [`ApiDefinition`] and back, so that:
//!
//! - an import either yields a definition plus *warnings* (things stored but not enforced yet, or
//!   ignored extensions: nothing is dropped silently), or fails with *every* problem found, each
//!   named by the RFC 6901 JSON pointer of the offending node (and a line/column for syntax
//!   errors), so a user can fix a document in one pass rather than one error per attempt;
//! - an export writes back everything the model holds, so import → export → import is lossless.
//!
//! The module does no I/O: callers pass the text, the API id, the clock and an id generator.
//! Its cost is bounded before parsing (`limits`: 6 MB, flow nesting, node count) because the
//! management API feeds it documents from the network; callers run it on the blocking pool.
//!
//! ```text
//!   text ──parse──▶ serde_json::Value ──$ref check──▶ walk (info, schemes, models,
//!                   (YAML converted,                   validators, paths → resources,
//!                    keys stringified)                 methods, integrations) ──▶ ApiDefinition
//!                                                                                + warnings
//!   ApiDefinition ──export_oas30 / export_swagger2──▶ serde_json::Value
//! ```

mod export;
mod import;
pub mod limits;
mod pointer;

use std::fmt;

use portico_proto::ApiDefinition;

pub use export::{export_oas30, export_swagger2};

/// The outcome of a successful import: the definition and what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub definition: ApiDefinition,
    /// Things accepted but not (yet) acted on, each naming where it is in the document. Their
    /// [`Display`](fmt::Display) texts are also in `definition.api.warnings`.
    pub warnings: Vec<Problem>,
}

/// One error or warning about a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer (RFC 6901) of the node at fault, e.g.
    /// `/paths/~1pets~1{petId}/get/x-amazon-apigateway-integration/uri`; `/` for the document.
    pub pointer: String,
    pub message: String,
    /// Line and column (1-based) where known, i.e. for syntax errors.
    pub line: Option<(usize, usize)>,
}

impl Problem {
    pub(crate) fn at(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let mut pointer = pointer.into();
        if pointer.is_empty() {
            pointer.push('/');
        }
        Problem {
            pointer,
            message: message.into(),
            line: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => write!(f, "{}: {}", self.pointer, self.message),
        }
    }
}

/// A rejected document: every problem found, in document order of discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file name the caller gave, used as the prefix of every line of the rendering.
    pub source: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ImportError {
    /// One problem per line: `FILE:LINE:COL: message` or `FILE: POINTER: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            match problem.line {
                Some(_) => write!(f, "{}:{problem}", self.source)?,
                None => write!(f, "{}: {problem}", self.source)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ImportError {}

/// Imports an OpenAPI 3.0.x (3.1 with a warning) or Swagger 2.0 document, JSON or YAML.
///
/// `source` names the document in error messages; `api_id` becomes the API's id; `now_epoch_s`
/// its creation date; `next_id` supplies a fresh 10-character id for the root resource and for
/// every resource, authorizer, model and request validator created.
pub fn import(
    source: &str,
    text: &str,
    api_id: &str,
    now_epoch_s: i64,
    next_id: &mut dyn FnMut() -> String,
) -> Result<Imported, ImportError> {
    import::import(text, api_id, now_epoch_s, next_id).map_err(|problems| ImportError {
        source: source.to_string(),
        problems,
    })
}
