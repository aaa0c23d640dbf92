//! Inbound RFC 5322 bytes through what `POST /v1/email/inbound` does before
//! the store: MIME parsing, thread candidates, Message-ID normalisation,
//! reply-text extraction and attachment reading.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_parser::{MessageParser, MimeHeaders};
use continuity::channels::email::{message_id, reply_text, thread_candidates};

fuzz_target!(|data: &[u8]| {
    let Some(msg) = MessageParser::default().parse(data) else { return };
    for (_, id) in thread_candidates(&msg) {
        assert_eq!(message_id(&id).as_deref(), Some(id.as_str()), "a candidate is already normalised");
    }
    if let Some(text) = msg.body_text(0) {
        let reply = reply_text(&text);
        assert!(reply.len() <= text.len());
    }
    for part in msg.attachments() {
        let _ = (part.attachment_name(), part.content_type(), part.contents().len());
    }
});
