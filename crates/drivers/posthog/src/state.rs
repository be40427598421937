//! The incremental state this driver returns and gets back on its next run:
//!
//! ```json
//! {"data_type": "events",
//!  "newest": {"timestamp": "2024-01-01T10:00:00.123456Z", "id": "<uuid>"},
//!  "recent_ids": [["2024-01-01T09:50:00Z", "<uuid>"], ...]}
//! ```
//! `newest` is the last row of the sort order read so far; `recent_ids` the rows within the
//! lookback window before it, which the next run reads again and drops (deduplication).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::DataType;

/// What the previous successful run left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The data type read; a state of another type is not used.
    pub data_type: DataType,
    /// The newest row read: its sort timestamp and id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub newest: Option<Newest>,
    /// (timestamp, id) of the rows within the lookback window before `newest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_ids: Vec<(Timestamp, String)>,
}

/// The newest row read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Newest {
    /// Its timestamp (events: timestamp, sessions: $start_timestamp, persons: created_at).
    pub timestamp: Timestamp,
    /// Its id (uuid, session_id, person id).
    pub id: String,
}

impl State {
    /// The stored state, if it is one of `data_type`. `Err` describes a state that is not
    /// this driver's format.
    pub fn from_stored(
        stored: Option<&Value>,
        data_type: DataType,
    ) -> Result<Option<Self>, String> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        let state: Self = serde_json::from_value(stored.clone()).map_err(|e| e.to_string())?;
        Ok((state.data_type == data_type).then_some(state))
    }

    /// The JSON stored by the runtime.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("state serializes")
    }
}
