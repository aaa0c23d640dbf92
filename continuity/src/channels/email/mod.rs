//! Email: inbound RFC 5322 messages threaded into the patient's
//! conversation, outbound messages composed with a Message-ID we record so
//! the reply threads back, and delivery through the tenant's SMTP relay.

mod auth_results;
mod inbound;
mod outbound;
mod reply;
mod staff_reply;
mod thread;

pub use auth_results::verdict;
pub use inbound::{AttachmentAck, Inbound, Parsed, parse, receive};
pub use outbound::{Composed, OutboundRequest, compose, record_delivery};
pub use reply::reply_text;
pub use staff_reply::{StaffActor, staff_reply};
pub use thread::{Via, message_id, our_message_id, thread_candidates};
