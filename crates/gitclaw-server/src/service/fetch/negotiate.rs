//! Negotiation: which of the client's haves the server has, and whether the
//! pack can be sent now — git's upload-pack rules for v0/v1 stateless RPC
//! (`multi_ack`, `multi_ack_detailed`, `no-done`) and for v2
//! (`acknowledgments`, `ready`, `wait-for-done`). The lines themselves are the
//! protocol crate's.

use gitclaw_pack::{
    walk::{ok_to_give_up, to_acknowledge, Graph, ShallowPlan},
    ObjectId,
};
use gitclaw_protocol::{
    pktline, v0,
    v0::AckStatus,
    v2::{self, Section},
};

use super::FetchJob;
use crate::error::GitError;

/// The `shallow`/`unshallow` lines of a plan.
pub fn shallow_lines(out: &mut Vec<u8>, plan: &ShallowPlan) {
    for id in &plan.shallow {
        v0::write_shallow(out, id);
    }
    for id in &plan.unshallow {
        v0::write_unshallow(out, id);
    }
}

/// v0/v1 stateless negotiation: the lines to send, and whether the pack follows.
pub fn negotiate_v0(
    graph: &mut Graph<'_>,
    job: &FetchJob,
    commons: &[ObjectId],
    out: &mut Vec<u8>,
) -> Result<bool, GitError> {
    if !job.done && job.haves.is_empty() {
        // The request ended after the want section (the first round of a shallow
        // fetch): git's upload-pack answers only the shallow list, nothing more.
        return Ok(false);
    }
    for (i, id) in commons.iter().enumerate() {
        if job.multi_ack_detailed {
            v0::write_ack(out, id, Some(AckStatus::Common));
        } else if job.multi_ack {
            v0::write_ack(out, id, Some(AckStatus::Continue));
        } else if i == 0 {
            v0::write_ack(out, id, None);
        }
    }
    let last = commons.last();
    if job.done {
        match last {
            Some(id) if job.multi_ack || job.multi_ack_detailed => v0::write_ack(out, id, None),
            Some(_) => {}
            None => v0::write_nak(out),
        }
        return Ok(true);
    }
    let ready = match last {
        Some(_) if job.multi_ack_detailed => {
            ok_to_give_up(graph, &job.wants, commons, job.shallow())?
        }
        _ => false,
    };
    if let (true, Some(id)) = (ready, last) {
        v0::write_ack(out, id, Some(AckStatus::Ready));
    }
    if commons.is_empty() || job.multi_ack || job.multi_ack_detailed {
        v0::write_nak(out);
    }
    if let (true, true, Some(id)) = (ready, job.no_done, last) {
        v0::write_ack(out, id, None);
        return Ok(true);
    }
    Ok(false)
}

/// v2 negotiation: the `acknowledgments` section, and whether the pack follows.
pub fn negotiate_v2(
    graph: &mut Graph<'_>,
    job: &FetchJob,
    commons: &[ObjectId],
    out: &mut Vec<u8>,
) -> Result<bool, GitError> {
    if job.done || job.haves.is_empty() {
        return Ok(true);
    }
    v2::write_section(out, Section::Acknowledgments);
    if commons.is_empty() {
        v0::write_nak(out);
    }
    // Unlike v0/v1, where git acknowledges every common have, v2 leaves out the
    // parents of those it acknowledged.
    for id in to_acknowledge(graph, commons)? {
        v2::write_ack(out, &id);
    }
    if !job.wait_for_done && ok_to_give_up(graph, &job.wants, commons, job.shallow())? {
        v2::write_ready(out);
        out.extend_from_slice(pktline::DELIM);
        return Ok(true);
    }
    out.extend_from_slice(pktline::FLUSH);
    Ok(false)
}
