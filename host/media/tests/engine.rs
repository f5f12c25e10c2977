//! The engine over real UDP on 127.0.0.1. Every test uses its own slice of ports
//! 41000-41999 so tests can run in parallel, and everything is bounded in time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use plugboard_media::dtmf::TelephoneEvent;
use plugboard_media::rtp::{self, RtpHeader};
use plugboard_media::{
    Audio, Codec, MediaConfig, MediaEngine, MediaError, Negotiated, PlayOutcome, RecordOptions,
    RecordStop, bridge, g711,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn engine(base: u16, count: u16) -> MediaEngine {
    MediaEngine::new(MediaConfig {
        bind_ip: LOCALHOST,
        advertise_ip: LOCALHOST,
        port_min: base,
        port_max: base + count - 1,
    })
    .expect("engine")
}

async fn peer() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).await.expect("peer socket")
}

fn negotiated(remote: SocketAddr, codec: Codec, te: Option<u8>) -> Negotiated {
    Negotiated {
        codec,
        remote,
        telephone_event_pt: te,
        ptime_ms: 20,
    }
}

/// A 400 Hz tone.
fn tone(ms: u32, amplitude: f64) -> Audio {
    let n = ms as usize * 8;
    Audio::new(
        (0..n)
            .map(|i| (amplitude * (i as f64 * 400.0 * std::f64::consts::TAU / 8000.0).sin()) as i16)
            .collect(),
    )
}

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    header: RtpHeader,
    payload: Vec<u8>,
}

/// Receives RTP until `quiet` passes without a packet.
async fn receive_until_quiet(sock: &UdpSocket, quiet: Duration) -> Vec<Received> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(Ok((n, _))) = timeout(quiet, sock.recv_from(&mut buf)).await {
        if let Some((header, payload)) = rtp::parse(&buf[..n]) {
            out.push(Received {
                at: Instant::now(),
                header,
                payload: payload.to_vec(),
            });
        }
    }
    out
}

/// Sends `frames` 20 ms audio packets of a constant code, paced.
async fn send_audio(sock: &UdpSocket, to: SocketAddr, pt: u8, code: u8, frames: u16, seq0: u16) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut buf = Vec::new();
    for i in 0..frames {
        tick.tick().await;
        let seq = seq0.wrapping_add(i);
        let ts = (u32::from(seq0) + u32::from(i)) * 160;
        let h = RtpHeader::new(pt, seq, ts, 0x5EED);
        rtp::build(&h, &[code; 160], &mut buf);
        sock.send_to(&buf, to).await.expect("send");
    }
}

/// Sends one RFC 4733 key press: 3 updates and 3 end packets, all with timestamp `ts`.
async fn send_key(sock: &UdpSocket, to: SocketAddr, pt: u8, event: u8, ts: u32, seq0: u16) {
    let mut buf = Vec::new();
    for (i, (end, duration)) in [
        (false, 160),
        (false, 320),
        (false, 480),
        (true, 640),
        (true, 640),
        (true, 640),
    ]
    .into_iter()
    .enumerate()
    {
        let mut h = RtpHeader::new(pt, seq0.wrapping_add(i as u16), ts, 0x5EED);
        h.marker = i == 0;
        let ev = TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        };
        rtp::build(&h, &ev.to_bytes(), &mut buf);
        sock.send_to(&buf, to).await.expect("send key");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_one_second_prompt_sends_50_paced_packets() {
    let engine = engine(41000, 10);
    let session = engine.open_session().await.unwrap();
    let rx = peer().await;
    session.set_remote(negotiated(rx.local_addr().unwrap(), Codec::Pcmu, Some(101)));
    let audio = tone(1000, 8000.0);

    let receiver = tokio::spawn(async move {
        let pkts = receive_until_quiet(&rx, Duration::from_millis(300)).await;
        (rx, pkts)
    });
    let started = Instant::now();
    let outcome = timeout(Duration::from_secs(5), session.play(&audio, false))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcome, PlayOutcome::Completed);
    assert!(
        took >= Duration::from_millis(980) && took < Duration::from_millis(1300),
        "play took {took:?}"
    );
    let (rx, pkts) = receiver.await.unwrap();
    assert_eq!(pkts.len(), 50);
    let first = &pkts[0].header;
    assert!(first.marker, "marker on the first packet");
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.ssrc, first.ssrc);
        assert_eq!(p.header.sequence, first.sequence.wrapping_add(i as u16));
        assert_eq!(
            p.header.timestamp,
            first.timestamp.wrapping_add(160 * i as u32)
        );
        assert_eq!(p.payload.len(), 160);
        assert_eq!(p.header.marker, i == 0);
        let expected: Vec<u8> = audio.samples[i * 160..(i + 1) * 160]
            .iter()
            .map(|&s| g711::ulaw_encode(s))
            .collect();
        assert_eq!(p.payload, expected, "frame {i} payload");
    }
    let mut gaps: Vec<f64> = pkts
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64() * 1000.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    assert!((median - 20.0).abs() < 2.0, "median gap {median} ms");
    let span = (pkts[49].at - pkts[0].at).as_secs_f64() * 1000.0;
    assert!((span - 980.0).abs() < 40.0, "49 intervals took {span} ms");
    assert_eq!(session.stats().tx_packets, 50);
    let pacer = engine.pacer_stats();
    assert!(pacer.ticks >= 150, "the pacer wakes every 5 ms: {pacer:?}");
    assert!(pacer.max_busy_us < 20_000, "{pacer:?}");

    // A second play continues the sequence, starts a new talkspurt, and the timestamp has
    // advanced by at least the time between the plays.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second =
        tokio::spawn(async move { receive_until_quiet(&rx, Duration::from_millis(300)).await });
    assert_eq!(
        session.play(&tone(100, 8000.0), false).await,
        PlayOutcome::Completed
    );
    let more = second.await.unwrap();
    assert_eq!(more.len(), 5);
    let last = &pkts[49].header;
    assert_eq!(more[0].header.sequence, last.sequence.wrapping_add(1));
    assert!(more[0].header.marker);
    let advance = more[0].header.timestamp.wrapping_sub(last.timestamp);
    assert!(
        (160 * 5..160 * 30).contains(&advance),
        "timestamp advanced by {advance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_play_pads_the_last_frame_with_silence() {
    let engine = engine(41020, 10);
    let session = engine.open_session().await.unwrap();
    let rx = peer().await;
    session.set_remote(negotiated(rx.local_addr().unwrap(), Codec::Pcma, None));
    let audio = Audio::new(vec![1000; 200]); // 1.25 frames
    let receiver =
        tokio::spawn(async move { receive_until_quiet(&rx, Duration::from_millis(300)).await });
    assert_eq!(session.play(&audio, false).await, PlayOutcome::Completed);
    let pkts = receiver.await.unwrap();
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].header.payload_type, 8);
    assert!(
        pkts[0]
            .payload
            .iter()
            .all(|&c| c == g711::alaw_encode(1000))
    );
    assert!(
        pkts[1].payload[..40]
            .iter()
            .all(|&c| c == g711::alaw_encode(1000))
    );
    assert!(
        pkts[1].payload[40..]
            .iter()
            .all(|&c| c == g711::alaw_encode(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_events_with_retransmitted_ends_give_one_digit_each() {
    let engine = engine(41040, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
    ));
    let to = session.local_addr();
    send_key(&phone, to, 101, 1, 1000, 10).await;
    send_key(&phone, to, 101, 1, 3000, 20).await; // the same key again
    send_key(&phone, to, 101, 11, 5000, 30).await;
    // A late duplicate end packet of the first press.
    let mut buf = Vec::new();
    let ev = TelephoneEvent {
        event: 1,
        end: true,
        volume: 10,
        duration: 640,
    };
    rtp::build(
        &RtpHeader::new(101, 40, 1000, 0x5EED),
        &ev.to_bytes(),
        &mut buf,
    );
    phone.send_to(&buf, to).await.unwrap();

    let wait = Duration::from_secs(2);
    assert_eq!(session.next_digit(wait).await, Ok(Some('1')));
    assert_eq!(session.next_digit(wait).await, Ok(Some('1')));
    assert_eq!(session.next_digit(wait).await, Ok(Some('#')));
    assert_eq!(
        session.next_digit(Duration::from_millis(200)).await,
        Ok(None)
    );
    assert_eq!(session.stats().rx_packets, 19);

    // clear_digits forgets queued keys.
    send_key(&phone, to, 101, 7, 9000, 50).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.clear_digits();
    assert_eq!(
        session.next_digit(Duration::from_millis(100)).await,
        Ok(None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_playback_and_keeps_the_digit() {
    let engine = engine(41060, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
    ));
    let to = session.local_addr();

    let long = tone(5000, 8000.0);
    let press = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_key(&phone, to, 101, 5, 777, 1).await;
    };
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(session.play(&long, true), press);
    assert_eq!(outcome, PlayOutcome::Interrupted);
    assert!(started.elapsed() < Duration::from_secs(2), "stopped early");
    assert_eq!(session.next_digit(Duration::ZERO).await, Ok(Some('5')));

    // Without barge-in the prompt plays to the end; the digit is still queued.
    let short = tone(600, 8000.0);
    let press = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send_key(&phone, to, 101, 6, 9999, 10).await;
    };
    let (outcome, ()) = tokio::join!(session.play(&short, false), press);
    assert_eq!(outcome, PlayOutcome::Completed);
    // Type-ahead: a queued key interrupts a barge-in prompt at once.
    assert_eq!(session.play(&short, true).await, PlayOutcome::Interrupted);
    assert_eq!(session.next_digit(Duration::ZERO).await, Ok(Some('6')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_two_seconds_then_silence() {
    let engine = engine(41080, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
    ));
    let to = session.local_addr();
    let loud = g711::ulaw_encode(6000);
    let quiet = g711::ulaw_encode(0);
    let talk = async {
        send_audio(&phone, to, 0, loud, 100, 0).await;
        send_audio(&phone, to, 0, quiet, 100, 100).await;
    };
    let opts = RecordOptions {
        max_ms: 10_000,
        silence_ms: 800,
        stop_keys: "#".into(),
    };
    let (rec, ()) = tokio::join!(timeout(Duration::from_secs(6), session.record(opts)), talk);
    let rec = rec.expect("bounded");
    assert_eq!(rec.stopped_by, RecordStop::Silence);
    assert_eq!(rec.key, None);
    assert_eq!(rec.samples.len(), 16_000, "2 s of voice, silence trimmed");
    assert!(rec.samples.iter().all(|&s| s == g711::ulaw_decode(loud)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_stops_on_key_max_length_and_hangup() {
    let engine = engine(41100, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(
        phone.local_addr().unwrap(),
        Codec::Pcma,
        Some(101),
    ));
    let to = session.local_addr();
    let loud = g711::alaw_encode(-7000);

    // Stop key: 1 s of voice then '#'.
    let talk = async {
        send_audio(&phone, to, 8, loud, 50, 0).await;
        send_key(&phone, to, 101, 11, 50 * 160, 50).await;
    };
    let opts = RecordOptions {
        max_ms: 10_000,
        silence_ms: 0,
        stop_keys: "#*".into(),
    };
    let (rec, ()) = tokio::join!(timeout(Duration::from_secs(5), session.record(opts)), talk);
    let rec = rec.expect("bounded");
    assert_eq!(rec.stopped_by, RecordStop::Key);
    assert_eq!(rec.key, Some('#'));
    assert_eq!(rec.samples.len(), 8000);
    assert_eq!(
        session.next_digit(Duration::ZERO).await,
        Ok(None),
        "the stop key is consumed"
    );

    // Max length with continuous voice.
    let talk = send_audio(&phone, to, 8, loud, 60, 100);
    let opts = RecordOptions {
        max_ms: 500,
        silence_ms: 0,
        stop_keys: String::new(),
    };
    let (rec, ()) = tokio::join!(timeout(Duration::from_secs(5), session.record(opts)), talk);
    let rec = rec.expect("bounded");
    assert_eq!(rec.stopped_by, RecordStop::MaxLength);
    assert_eq!(rec.samples.len(), 4000);

    // Silence timeout by the wall clock when no RTP arrives at all.
    tokio::time::sleep(Duration::from_millis(100)).await; // let the last packets drain
    let opts = RecordOptions {
        max_ms: 0,
        silence_ms: 300,
        stop_keys: String::new(),
    };
    let rec = timeout(Duration::from_secs(2), session.record(opts))
        .await
        .unwrap();
    assert_eq!(rec.stopped_by, RecordStop::Silence);
    assert!(rec.samples.is_empty());

    // Hangup.
    let closer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        session.close();
    };
    let (rec, ()) = tokio::join!(
        timeout(
            Duration::from_secs(2),
            session.record(RecordOptions::default())
        ),
        closer
    );
    assert_eq!(rec.unwrap().stopped_by, RecordStop::Hangup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_relays_both_ways_with_transcoding_and_dtmf() {
    let engine = engine(41120, 10);
    let a = engine.open_session().await.unwrap();
    let b = engine.open_session().await.unwrap();
    let pa = peer().await;
    let pb = peer().await;
    a.set_remote(negotiated(pa.local_addr().unwrap(), Codec::Pcmu, Some(101)));
    b.set_remote(negotiated(pb.local_addr().unwrap(), Codec::Pcma, Some(96)));

    let handle = bridge(&a, &b);
    let code = g711::ulaw_encode(5000);
    let (_, at_b) = tokio::join!(
        async {
            send_audio(&pa, a.local_addr(), 0, code, 20, 65530).await;
            send_key(&pa, a.local_addr(), 101, 3, (65530 + 20) * 160, 14).await;
        },
        receive_until_quiet(&pb, Duration::from_millis(300))
    );
    let audio: Vec<_> = at_b.iter().filter(|p| p.header.payload_type == 8).collect();
    let events: Vec<_> = at_b
        .iter()
        .filter(|p| p.header.payload_type == 96)
        .collect();
    assert_eq!(audio.len(), 20);
    assert_eq!(events.len(), 6);
    assert!(audio[0].header.marker);
    for (i, p) in audio.iter().enumerate() {
        assert_eq!(p.header.ssrc, audio[0].header.ssrc, "B's own SSRC");
        assert_ne!(p.header.ssrc, 0x5EED);
        assert_eq!(
            p.header.sequence,
            audio[0].header.sequence.wrapping_add(i as u16),
            "continuous across the input's wrap"
        );
        assert_eq!(
            p.header.timestamp,
            audio[0].header.timestamp.wrapping_add(160 * i as u32)
        );
        assert!(
            p.payload.iter().all(|&c| c == g711::ulaw_to_alaw(code)),
            "transcoded"
        );
    }
    assert_eq!(events[0].header.ssrc, audio[0].header.ssrc);
    assert_eq!(events[0].payload[0], 3);
    assert_eq!(a.next_digit(Duration::from_secs(1)).await, Ok(Some('3')));

    let back = g711::alaw_encode(-3000);
    let (_, at_a) = tokio::join!(
        send_audio(&pb, b.local_addr(), 8, back, 10, 0),
        receive_until_quiet(&pa, Duration::from_millis(300))
    );
    assert_eq!(at_a.len(), 10);
    assert!(at_a.iter().all(|p| p.header.payload_type == 0));
    assert!(
        at_a.iter()
            .all(|p| p.payload.iter().all(|&c| c == g711::alaw_to_ulaw(back)))
    );
    assert_eq!(a.stats().rx_packets, 26);
    assert_eq!(b.stats().tx_packets, 26);
    assert_eq!(b.stats().rx_packets, 10);
    assert_eq!(a.stats().tx_packets, 10);

    // While bridged, play is refused; after the bridge both legs play again.
    assert_eq!(
        a.play(&tone(100, 1000.0), false).await,
        PlayOutcome::Interrupted
    );
    drop(handle);
    let (_, nothing) = tokio::join!(
        send_audio(&pa, a.local_addr(), 0, code, 5, 100),
        receive_until_quiet(&pb, Duration::from_millis(200))
    );
    assert!(nothing.is_empty(), "no relay after the bridge ended");
    let prompt = tone(100, 1000.0);
    let (outcome, after) = tokio::join!(
        b.play(&prompt, false),
        receive_until_quiet(&pb, Duration::from_millis(300))
    );
    assert_eq!(outcome, PlayOutcome::Completed);
    assert_eq!(after.len(), 5);
    let last = audio[19].header;
    assert_eq!(
        after[0].header.sequence,
        events[5].header.sequence.wrapping_add(1),
        "B's sequence continues after the bridge"
    );
    assert!(after[0].header.timestamp.wrapping_sub(last.timestamp) < 0x8000_0000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_one_leg_ends_the_bridge() {
    let engine = engine(41140, 10);
    let a = engine.open_session().await.unwrap();
    let b = engine.open_session().await.unwrap();
    let pa = peer().await;
    let pb = peer().await;
    a.set_remote(negotiated(pa.local_addr().unwrap(), Codec::Pcmu, None));
    b.set_remote(negotiated(pb.local_addr().unwrap(), Codec::Pcmu, None));
    let _handle = bridge(&a, &b);
    b.close();
    assert_eq!(engine.active_sessions(), 1);
    let (_, nothing) = tokio::join!(
        send_audio(&pa, a.local_addr(), 0, 0x55, 3, 0),
        receive_until_quiet(&pb, Duration::from_millis(200))
    );
    assert!(nothing.is_empty());
    assert_eq!(
        a.play(&tone(40, 1000.0), false).await,
        PlayOutcome::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_rtp_latches_onto_the_first_source() {
    let engine = engine(41160, 10);
    let session = engine.open_session().await.unwrap();
    let nat = peer().await;
    let intruder = peer().await;
    // The SDP says a port nobody listens on; the phone actually sends from `nat`.
    let sdp_addr: SocketAddr = (LOCALHOST, 9).into();
    session.set_remote(negotiated(sdp_addr, Codec::Pcmu, Some(101)));
    send_audio(&nat, session.local_addr(), 0, 0xFF, 1, 0).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(session.remote(), Some(nat.local_addr().unwrap()));

    // Packets from another source are ignored once latched.
    send_key(&intruder, session.local_addr(), 101, 9, 100, 0).await;
    assert_eq!(
        session.next_digit(Duration::from_millis(150)).await,
        Ok(None)
    );

    let prompt = tone(100, 1000.0);
    let (outcome, got) = tokio::join!(
        session.play(&prompt, false),
        receive_until_quiet(&nat, Duration::from_millis(300))
    );
    assert_eq!(outcome, PlayOutcome::Completed);
    assert_eq!(got.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_sending() {
    let engine = engine(41180, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(phone.local_addr().unwrap(), Codec::Pcmu, None));
    session.set_hold(true);
    let prompt = tone(200, 1000.0);
    let (outcome, got) = tokio::join!(
        session.play(&prompt, false),
        receive_until_quiet(&phone, Duration::from_millis(300))
    );
    assert_eq!(outcome, PlayOutcome::Completed);
    assert!(got.is_empty());
    session.set_hold(false);
    let prompt = tone(200, 1000.0);
    let (_, got) = tokio::join!(
        session.play(&prompt, false),
        receive_until_quiet(&phone, Duration::from_millis(300))
    );
    assert_eq!(got.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_come_from_the_range_and_are_reused_after_drop() {
    // Range 41201-41206: even ports 41202, 41204, 41206. One is taken by someone else.
    let squatter = std::net::UdpSocket::bind((LOCALHOST, 41202)).unwrap();
    let engine = engine(41201, 6);
    let s1 = engine.open_session().await.unwrap();
    let s2 = engine.open_session().await.unwrap();
    assert_eq!(s1.local_addr().port(), 41204);
    assert_eq!(s2.local_addr().port(), 41206);
    assert_eq!(engine.active_sessions(), 2);
    assert!(matches!(
        engine.open_session().await,
        Err(MediaError::PortsExhausted {
            min: 41201,
            max: 41206
        })
    ));
    drop(squatter);
    let s3 = engine.open_session().await.unwrap();
    assert_eq!(s3.local_addr().port(), 41202);
    let freed = s1.local_addr().port();
    drop(s1);
    assert_eq!(engine.active_sessions(), 2);
    // The port is back in the pool once the receive task has let go of it.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(s) = engine.open_session().await {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reopened.expect("port reused").local_addr().port(), freed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_every_waiter() {
    let engine = engine(41220, 10);
    let session = engine.open_session().await.unwrap();
    let phone = peer().await;
    session.set_remote(negotiated(phone.local_addr().unwrap(), Codec::Pcmu, None));
    let closer = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        session.close();
    };
    let prompt = tone(3000, 1000.0);
    let (play, digit, ()) = tokio::join!(
        session.play(&prompt, false),
        session.next_digit(Duration::from_secs(5)),
        closer
    );
    assert_eq!(play, PlayOutcome::Closed);
    assert!(digit.is_err());
    assert_eq!(
        session.play(&tone(100, 1.0), false).await,
        PlayOutcome::Closed
    );
    assert_eq!(engine.active_sessions(), 0);
}

#[test]
fn bad_configs_are_refused() {
    let cfg = |min, max| MediaConfig {
        bind_ip: LOCALHOST,
        advertise_ip: LOCALHOST,
        port_min: min,
        port_max: max,
    };
    assert!(matches!(
        MediaEngine::new(cfg(5000, 4000)),
        Err(MediaError::Config(_))
    ));
    assert!(matches!(
        MediaEngine::new(cfg(5001, 5001)),
        Err(MediaError::Config(_))
    ));
    assert!(matches!(
        MediaEngine::new(cfg(0, 10)),
        Err(MediaError::Config(_))
    ));
    assert!(MediaEngine::new(cfg(5000, 5000)).is_ok());
}
