//! The dataflow runtime (docs/architecture.md, "The runtime"): traits,
//! messages, row-counted channels, graph planning, task loops, and starting
//! a pipeline.

mod channel;
mod coordinator;
mod error;
mod graph;
mod inputs;
pub(crate) mod latency;
mod message;
mod run;
mod status;
mod tasks;
pub mod trace;
mod traits;

pub use channel::{ChannelClosed, RowReceiver, RowSender, row_channel};
pub use coordinator::{Ack, Coordinator, SourceControl};
pub use error::PipelineError;
pub use graph::{PlannedNode, Registry, plan};
pub use inputs::{InputEvent, Inputs};
pub use message::{Batch, Message, Watermark};
pub use run::{RunningPipeline, start, start_with};
pub use status::PipelineStatus;
pub use traits::{
    Committer, Emitter, Node, NodeError, OUT, Operator, Sink, Source, SourcePoll, StateBlob,
};
