//! The git wire protocol, server side: bytes in, bytes out.
//!
//! This crate parses what git clients send to `git-upload-pack` and
//! `git-receive-pack` and lays out what the server answers. It knows nothing
//! of HTTP, storage or SQL, and decides nothing: which refs exist, what to
//! acknowledge, which updates to accept are the caller's. Every parse of
//! client bytes returns a [`ProtocolError`] whose `Display` is a one-line
//! message fit for an `ERR` packet; nothing panics on any input, and nothing
//! allocates in proportion to a number the client wrote.
//!
//! Object ids are SHA-1 [`gix_hash::ObjectId`]s, 40 hex digits on the wire.
//!
//! # Public API
//!
//! - [`pktline`] — [`FLUSH`](pktline::FLUSH), [`DELIM`](pktline::DELIM),
//!   [`RESPONSE_END`](pktline::RESPONSE_END), [`MAX_PKT_LEN`](pktline::MAX_PKT_LEN),
//!   [`MAX_PKT_DATA`](pktline::MAX_PKT_DATA); [`PktLine`](pktline::PktLine) /
//!   [`OwnedPktLine`](pktline::OwnedPktLine); [`PktReader`](pktline::PktReader)
//!   (`new`, `read`, `remaining`, `position`) over a complete buffer;
//!   [`decode_one`](pktline::decode_one) for streamed input;
//!   [`write_data`](pktline::write_data), [`data_pkt`](pktline::data_pkt),
//!   [`write_text`](pktline::write_text), [`write_err`](pktline::write_err),
//!   [`trim_newline`](pktline::trim_newline).
//! - [`sideband`] — [`Band`](sideband::Band), [`write_band`](sideband::write_band),
//!   [`SIDEBAND_64K_MAX`](sideband::SIDEBAND_64K_MAX), [`SIDEBAND_MAX`](sideband::SIDEBAND_MAX).
//! - [`capabilities`] — [`Capabilities`](capabilities::Capabilities) (`parse`,
//!   `has`, `get`, `iter`).
//! - [`refs`] — [`AdvertisedRef`](refs::AdvertisedRef), [`Service`](refs::Service),
//!   [`http_service_header`](refs::http_service_header),
//!   [`version1_line`](refs::version1_line), [`advertise_v0`](refs::advertise_v0),
//!   [`advertise_v2_capabilities`](refs::advertise_v2_capabilities).
//! - [`v0`] — [`parse_upload_request`](v0::parse_upload_request) →
//!   [`UploadRequest`](v0::UploadRequest); [`write_ack`](v0::write_ack) with
//!   [`AckStatus`](v0::AckStatus), [`write_nak`](v0::write_nak),
//!   [`write_shallow`](v0::write_shallow), [`write_unshallow`](v0::write_unshallow).
//! - [`v2`] — [`parse_command_request`](v2::parse_command_request) →
//!   [`CommandRequest`](v2::CommandRequest); [`LsRefsArgs`](v2::LsRefsArgs),
//!   [`FetchArgs`](v2::FetchArgs); [`write_ls_refs_line`](v2::write_ls_refs_line),
//!   [`write_section`](v2::write_section) with [`Section`](v2::Section),
//!   [`write_ack`](v2::write_ack), [`write_nak`](v2::write_nak),
//!   [`write_ready`](v2::write_ready), [`write_shallow`](v2::write_shallow),
//!   [`write_unshallow`](v2::write_unshallow), [`write_wanted_ref`](v2::write_wanted_ref).
//! - [`receive_pack`] — [`PushRequestParser`](receive_pack::PushRequestParser)
//!   (`new`, `feed` → [`ParseProgress`](receive_pack::ParseProgress),
//!   `partial` and `capabilities` after an error),
//!   [`parse_push_request`](receive_pack::parse_push_request) →
//!   [`PushRequest`](receive_pack::PushRequest) of
//!   [`RefCommand`](receive_pack::RefCommand)s;
//!   [`report_status`](receive_pack::report_status) with
//!   [`RefStatus`](receive_pack::RefStatus);
//!   [`push_response`](receive_pack::push_response) (the report or the
//!   failure, shaped by the client's capabilities).
//! - [`ProtocolError`] — the error of every fallible function.

pub mod capabilities;
mod error;
pub mod pktline;
pub mod receive_pack;
pub mod refs;
pub mod sideband;
mod text;
pub mod v0;
pub mod v2;

pub use error::ProtocolError;
pub use gix_hash::ObjectId;
