//! The response channel of a fetch: pack data and progress on their sideband
//! bands ([`PackSink`]), and the heartbeat that keeps a long quiet phase
//! (counting, compressing) from looking like a dead connection ([`Heartbeat`]).

use std::{
    cell::{Cell, RefCell},
    io::Write,
    time::Instant,
};

use gitclaw_pack::writer::Phase;
use gitclaw_protocol::sideband;

/// Pack data and messages on their sideband channels. Pack data is gathered into
/// full packets (the writer hands it over an entry header at a time, and a packet
/// per write would cost five bytes and a copy each).
pub struct PackSink<'a> {
    pub out: &'a mut dyn Write,
    sideband: Option<usize>,
    pending: Vec<u8>,
}

impl<'a> PackSink<'a> {
    pub fn new(out: &'a mut dyn Write, sideband: Option<usize>) -> Self {
        PackSink {
            out,
            sideband,
            pending: Vec::new(),
        }
    }

    pub fn band(&mut self, band: sideband::Band, data: &[u8]) -> std::io::Result<()> {
        self.send_pending(true)?;
        if let Some(max) = self.sideband {
            let mut buf = Vec::with_capacity(data.len() + 16);
            sideband::write_band(&mut buf, band, data, max);
            self.out.write_all(&buf)
        } else if matches!(band, sideband::Band::Data) {
            self.out.write_all(data)
        } else {
            Ok(())
        }
    }

    /// Send the gathered pack data: only whole packets, or everything when `all`.
    pub fn send_pending(&mut self, all: bool) -> std::io::Result<()> {
        let Some(max) = self.sideband else {
            return Ok(());
        };
        let chunk = sideband::payload_len(max);
        let ready = if all {
            self.pending.len()
        } else {
            self.pending.len() / chunk * chunk
        };
        if ready == 0 {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(ready + ready.div_ceil(chunk) * 5);
        sideband::write_band(&mut buf, sideband::Band::Data, &self.pending[..ready], max);
        self.pending.drain(..ready);
        self.out.write_all(&buf)
    }
}

impl Write for PackSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.sideband.is_none() {
            self.out.write_all(data)?;
        } else {
            self.pending.extend_from_slice(data);
            self.send_pending(false)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send_pending(true)?;
        self.out.flush()
    }
}

/// The response writer, shared between the request's own writes and the
/// keepalives sent from inside long walks (one thread; never both at once).
pub struct Shared<'r, 'w>(pub &'r RefCell<&'w mut dyn Write>);

impl Write for Shared<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// Seconds of silence after which a keepalive (or a progress line) goes out.
pub const KEEPALIVE_SECS: u64 = 2;

/// What the client hears during the quiet phases of the pack (counting,
/// compressing): progress lines, or empty keepalive packets under `no-progress`,
/// at most one per [`KEEPALIVE_SECS`], so proxies and clients never see the
/// connection go idle. Written straight to the response, between the pack
/// sink's whole packets; silent until [`Heartbeat::start`] (sideband open).
pub struct Heartbeat<'r, 'w> {
    pub shared: &'r RefCell<&'w mut dyn Write>,
    sideband: Option<usize>,
    pub progress: bool,
    since: Cell<Option<Instant>>,
}

impl<'r, 'w> Heartbeat<'r, 'w> {
    pub fn new(
        shared: &'r RefCell<&'w mut dyn Write>,
        sideband: Option<usize>,
        no_progress: bool,
    ) -> Self {
        Heartbeat {
            shared,
            sideband,
            progress: !no_progress && sideband.is_some(),
            since: Cell::new(None),
        }
    }

    pub fn start(&self) {
        self.since.set(Some(Instant::now()));
    }

    /// Speak if the connection has been quiet long enough: `line()` when the
    /// client takes progress, an empty data packet (git's keepalive) when it does not.
    pub fn beat(&self, line: impl FnOnce() -> String) {
        self.after_silence(|max, buf| {
            if self.progress {
                sideband::write_band(buf, sideband::Band::Progress, line().as_bytes(), max);
            } else {
                sideband::write_band(buf, sideband::Band::Data, b"", max);
            }
        });
    }

    /// An empty data packet if the connection has been quiet long enough.
    fn keep_alive(&self) {
        self.after_silence(|max, buf| sideband::write_band(buf, sideband::Band::Data, b"", max));
    }

    fn after_silence(&self, packet: impl FnOnce(usize, &mut Vec<u8>)) {
        let (Some(since), Some(max)) = (self.since.get(), self.sideband) else {
            return;
        };
        if since.elapsed().as_secs() < KEEPALIVE_SECS {
            return;
        }
        let mut buf = Vec::new();
        packet(max, &mut buf);
        self.send(&buf);
    }

    /// A progress line now, whatever the clock says (a phase's closing line).
    fn say(&self, line: &str) {
        let (true, Some(max)) = (self.progress, self.sideband) else {
            return;
        };
        let mut buf = Vec::new();
        sideband::write_band(&mut buf, sideband::Band::Progress, line.as_bytes(), max);
        self.send(&buf);
    }

    fn send(&self, packet: &[u8]) {
        // Never inside a write of the response itself (the same thread).
        if let Ok(mut w) = self.shared.try_borrow_mut() {
            let _ = w.write_all(packet).and_then(|_| w.flush());
        }
        self.since.set(Some(Instant::now()));
    }
}

/// The progress callback of the pack writer: "Compressing objects" while the
/// delta search runs (git's wording; keepalives under `no-progress`), keepalives
/// if the writing stalls.
pub fn compress_progress<'h, 'r, 'w>(
    heartbeat: &'h Heartbeat<'r, 'w>,
) -> impl FnMut(Phase, u32, u32) + use<'h, 'r, 'w> {
    let mut closed = false;
    move |phase, done, total| {
        if phase != Phase::Compressing {
            heartbeat.keep_alive();
        } else if done < total {
            heartbeat.beat(|| {
                let percent = u64::from(done) * 100 / u64::from(total);
                format!("Compressing objects: {percent}% ({done}/{total})\r")
            });
        } else if !closed {
            closed = true;
            heartbeat.say(&format!(
                "Compressing objects: 100% ({total}/{total}), done.\n"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitclaw_protocol::pktline;

    #[test]
    fn pack_data_goes_out_in_full_sideband_packets() {
        let mut out = Vec::new();
        let mut sink = PackSink::new(&mut out, Some(sideband::SIDEBAND_64K_MAX));
        let piece = [7u8; 10];
        for _ in 0..20_000 {
            sink.write_all(&piece).unwrap();
        }
        sink.band(sideband::Band::Progress, b"done\n").unwrap();
        sink.flush().unwrap();
        // 200,000 data bytes: three full packets and one for the rest, then the message.
        let lengths: Vec<(usize, u8)> = packets(&out)
            .iter()
            .map(|(band, payload)| (payload.len() + 5, *band))
            .collect();
        assert_eq!(
            lengths,
            [(65520, 1), (65520, 1), (65520, 1), (3460, 1), (10, 2)]
        );
    }

    /// The sideband packets in `out`: (band, payload).
    fn packets(out: &[u8]) -> Vec<(u8, String)> {
        let mut reader = pktline::PktReader::new(out);
        let mut found = Vec::new();
        while let Some(pkt) = reader.read().unwrap() {
            let data = pkt.data().expect("only data packets");
            found.push((data[0], String::from_utf8_lossy(&data[1..]).into_owned()));
        }
        found
    }

    fn heartbeat<'r, 'w>(
        shared: &'r RefCell<&'w mut dyn Write>,
        progress: bool,
    ) -> Heartbeat<'r, 'w> {
        Heartbeat {
            shared,
            sideband: Some(sideband::SIDEBAND_64K_MAX),
            progress,
            since: Cell::new(None),
        }
    }

    fn quiet_for(seconds: u64) -> Option<Instant> {
        Instant::now().checked_sub(std::time::Duration::from_secs(seconds))
    }

    #[test]
    fn quiet_phases_speak_only_after_a_silence() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, true);
            // Before the pack phase, and right after something was said: nothing.
            beat.beat(|| "early\r".into());
            beat.start();
            beat.beat(|| "too soon\r".into());
            // After a silence: one line, and the clock starts again.
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            beat.beat(|| "Counting objects: 7\r".into());
            beat.beat(|| "again\r".into());
        }
        assert_eq!(packets(&out), [(2, "Counting objects: 7\r".to_string())]);
    }

    #[test]
    fn without_progress_a_silence_gets_an_empty_data_packet() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, false);
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            beat.beat(|| "Counting objects: 7\r".into());
            beat.say("Compressing objects: 100% (1/1), done.\n");
        }
        assert_eq!(out, b"0005\x01");
    }

    #[test]
    fn a_long_delta_search_reports_its_share_then_done_once() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, true);
            beat.start();
            let mut report = compress_progress(&beat);
            report(Phase::Compressing, 0, 400);
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            report(Phase::Compressing, 100, 400);
            report(Phase::Compressing, 200, 400);
            report(Phase::Compressing, 400, 400);
            report(Phase::Compressing, 400, 400);
            report(Phase::Writing, 10, 500);
        }
        assert_eq!(
            packets(&out),
            [
                (2, "Compressing objects: 25% (100/400)\r".to_string()),
                (
                    2,
                    "Compressing objects: 100% (400/400), done.\n".to_string()
                ),
            ]
        );
    }
}
