//! One phone call, from the moment it is answered to its last BYE: the
//! keypad menu, waiting with hold audio, talking through the room, the
//! rating. One task, woken every 20 ms to move sound both ways, and by the
//! server's messages, the phone's keys and the SIP side's news.

use crate::ids::{ConsultationId, RequestId, RoomId};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use super::Asked;
use super::audio::{FRAME, HoldTone, Samples};
use super::bridge::Bridge;
use super::client::{Client, Event};
use super::lines::Line;
use super::rtp::{Incoming, Leg};
use super::sdp::Agreed;
use super::{ASK, PhoneConfig, Route};
use crate::domain::Topic;

/// What the SIP side tells a call.
#[derive(Debug)]
pub enum FromSip {
    /// The caller hung up (BYE, or CANCEL before the answer).
    Hangup,
    /// A key sent as SIP INFO.
    Digit(char),
    /// A re-INVITE moved or held the media.
    Update(Agreed),
}

/// How a call ended, for the SIP side to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The caller hung up: nothing more to send.
    CallerHungUp,
    /// We end it: send BYE.
    HangUp,
    /// Send the caller to the hotline's fallback (REFER), then BYE.
    Transfer(String),
}

/// The prompts a call may play, by name: `language` says "for this
/// language, press" and is followed by the language's number (`digit-N`).
pub const PROMPTS: [&str; 17] = [
    "welcome", "language", "topic", "waiting", "nobody", "rate", "thanks", "goodbye", "digit-1", "digit-2",
    "digit-3", "digit-4", "digit-5", "digit-6", "digit-7", "digit-8", "digit-9",
];

/// Recorded prompts per language, loaded once.
#[derive(Debug, Default)]
pub struct Prompts {
    by_language: HashMap<String, HashMap<&'static str, Arc<Vec<i16>>>>,
}

impl Prompts {
    /// Reads `<dir>/<language>/<prompt>.wav` for every language and prompt
    /// there is; a missing file is a prompt not played.
    pub fn load(dir: &Path, languages: &[String]) -> Prompts {
        let mut by_language = HashMap::new();
        for language in languages {
            let mut prompts = HashMap::new();
            for name in PROMPTS {
                let path = dir.join(language).join(format!("{name}.wav"));
                let Ok(bytes) = std::fs::read(&path) else { continue };
                match super::audio::read_wav(&bytes) {
                    Ok(samples) => {
                        prompts.insert(name, Arc::new(samples));
                    }
                    Err(error) => tracing::warn!(path = %path.display(), %error, "prompt not loaded"),
                }
            }
            if !prompts.is_empty() {
                by_language.insert(language.clone(), prompts);
            }
        }
        Prompts { by_language }
    }

    pub fn get(&self, language: &str, name: &str) -> Option<Arc<Vec<i16>>> {
        self.by_language.get(language)?.get(name).cloned()
    }

    pub fn has_language(&self, language: &str) -> bool {
        self.by_language.contains_key(language)
    }
}

/// What every call shares.
#[derive(Debug)]
pub struct Context {
    pub config: PhoneConfig,
    /// The deployment's languages, in the menu's order (key 1 is the first).
    pub languages: Vec<String>,
    pub server: std::net::SocketAddr,
    pub prompts: Prompts,
    pub hold: Option<Arc<Vec<i16>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Where the call is.
#[derive(Debug)]
enum Stage {
    /// The menu asks for a language, then a topic.
    Menu {
        language: Option<String>,
        asked: Instant,
        repeats: u32,
    },
    Waiting {
        request: Option<RequestId>,
    },
    Talking {
        consultation: ConsultationId,
    },
    /// The call is over; the caller may press 1–5.
    Rating {
        consultation: ConsultationId,
        until: Instant,
    },
    /// Saying a last prompt, then ending so.
    Leaving {
        ending: Ending,
    },
}

/// How long the menu waits for a key before it asks again, and how often.
const MENU_WAIT: Duration = Duration::from_secs(10);
const MENU_REPEATS: u32 = 2;
const RATING_WAIT: Duration = Duration::from_secs(15);

/// How a call went, for the SIP side.
#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    /// The consultation the caller had, if any (the last one).
    pub consultation: Option<ConsultationId>,
}

/// A call in progress.
struct Call<'a> {
    context: &'a Context,
    route: Route,
    line: &'a Line,
    leg: Leg,
    client: Client,
    stage: Stage,
    topic: Option<Topic>,
    /// The caller's voice, waiting to go into the room.
    caller: Samples,
    /// A prompt being said (it takes the place of hold audio or the room).
    saying: VecDeque<i16>,
    hold_at: usize,
    tone: HoldTone,
    bridge: Option<(RoomId, Bridge)>,
    last_received: (u64, Instant),
    /// A callback's lawyer (rung first) and appointment.
    asked: Option<Asked>,
    consultation: Option<ConsultationId>,
}

/// Runs a call that was answered with `leg`'s media, on `line`; a callback
/// says who `asked` for it.
pub async fn run(
    context: &Context,
    route: Route,
    line: &Line,
    leg: Leg,
    asked: Option<Asked>,
    mut from_sip: mpsc::Receiver<FromSip>,
) -> Outcome {
    let (incoming_tx, mut incoming) = mpsc::channel(64);
    let receiver = leg.receive(incoming_tx);
    let client = match Client::connect(context.server, &line.token).await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "the phone line cannot reach the live path");
            receiver.abort();
            return Outcome { ending: Ending::HangUp, consultation: None };
        }
    };
    let language = (route.language != ASK).then(|| route.language.clone());
    let topic = Topic::from_code(&route.topic);
    let mut call = Call {
        context,
        route,
        line,
        leg,
        client,
        stage: Stage::Menu { language, asked: Instant::now(), repeats: 0 },
        topic,
        caller: Samples::new(2 * FRAME, 25 * FRAME),
        saying: VecDeque::new(),
        hold_at: 0,
        tone: HoldTone::default(),
        bridge: None,
        last_received: (0, Instant::now()),
        asked,
        consultation: None,
    };
    call.say("welcome");
    call.menu().await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // After a stall, carry on at the pace: no burst of frames to catch up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The live path's connection closed: the call says goodbye and ends (and
    // listens to it no more).
    let mut server_gone = false;
    let ending = loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(ending) = call.tick().await {
                    break ending;
                }
            }
            event = call.client.next(), if !server_gone => match event {
                Some(event) => {
                    if let Some(ending) = call.on_event(event).await {
                        break ending;
                    }
                }
                None => {
                    tracing::info!("the phone line's connection closed");
                    server_gone = true;
                    call.leave(Ending::HangUp, "goodbye");
                }
            },
            news = from_sip.recv() => match news {
                Some(FromSip::Hangup) | None => {
                    call.withdraw().await;
                    break Ending::CallerHungUp;
                }
                Some(FromSip::Digit(digit)) => call.on_digit(digit).await,
                Some(FromSip::Update(agreed)) => {
                    if let Err(error) = call.leg.update(agreed) {
                        tracing::warn!(%error, "re-INVITE not taken");
                    }
                }
            },
            got = incoming.recv() => match got {
                Some(Incoming::Voice(samples)) => call.caller.extend(&samples),
                Some(Incoming::Digit(digit)) => call.on_digit(digit).await,
                None => {
                    tracing::info!("the phone's media ended");
                    call.withdraw().await;
                    break Ending::HangUp;
                }
            },
        }
    };
    receiver.abort();
    if let Some((_, bridge)) = call.bridge.take() {
        bridge.close().await;
    }
    let stats = &call.leg.stats;
    tracing::info!(
        line = %call.line.terminal,
        received = stats.received.load(Ordering::Relaxed),
        sent = stats.sent.load(Ordering::Relaxed),
        lost = stats.lost.load(Ordering::Relaxed),
        jitter_us = stats.jitter_us.load(Ordering::Relaxed),
        ?ending,
        "phone call ended"
    );
    call.context.metrics.phone_leg_ended(
        stats.received.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
        stats.jitter_us.load(Ordering::Relaxed) as f64 / 1_000_000.0,
    );
    let consultation = call.consultation.take();
    call.client.close().await;
    Outcome { ending, consultation }
}

impl Call<'_> {
    fn language(&self) -> &str {
        match &self.stage {
            Stage::Menu { language: Some(language), .. } => language,
            _ if self.route.language != ASK => &self.route.language,
            _ => self.context.languages.first().map(String::as_str).unwrap_or("zh"),
        }
    }

    /// Queues a prompt in the caller's language (nothing when it has none).
    fn say(&mut self, name: &str) {
        if let Some(prompt) = self.context.prompts.get(self.language(), name) {
            self.saying.extend(prompt.iter().copied());
        }
    }

    fn leave(&mut self, ending: Ending, prompt: &str) {
        self.saying.clear();
        self.say(prompt);
        self.stage = Stage::Leaving { ending };
    }

    /// Asks what the menu still needs, or, when it knows all, asks for a lawyer.
    async fn menu(&mut self) {
        let Stage::Menu { language, .. } = &self.stage else { return };
        match (language.clone(), self.topic) {
            (None, _) => {
                // Each language with prompts says its own number.
                for (i, language) in self.context.languages.iter().enumerate() {
                    let prompts = &self.context.prompts;
                    if let (Some(prompt), Some(digit)) = (
                        prompts.get(language, "language"),
                        prompts.get(language, &format!("digit-{}", i + 1)),
                    ) {
                        self.saying.extend(prompt.iter().chain(digit.iter()).copied());
                    }
                }
            }
            (Some(_), None) => self.say("topic"),
            (Some(language), Some(topic)) => {
                self.stage = Stage::Waiting { request: None };
                self.say("waiting");
                if let Err(error) = self.client.request(&language, topic.code(), self.asked.as_ref()).await {
                    tracing::warn!(%error, "request not sent");
                    self.leave(Ending::HangUp, "goodbye");
                }
            }
        }
    }

    async fn on_digit(&mut self, digit: char) {
        let Some(number) = digit.to_digit(10) else { return };
        match &mut self.stage {
            Stage::Menu { language, asked, repeats } => {
                if language.is_none() {
                    let Some(chosen) =
                        number.checked_sub(1).and_then(|i| self.context.languages.get(i as usize))
                    else {
                        return;
                    };
                    *language = Some(chosen.clone());
                } else if self.topic.is_none() {
                    let Some(topic) = number.checked_sub(1).and_then(|i| Topic::ALL.get(i as usize)) else {
                        return;
                    };
                    self.topic = Some(*topic);
                }
                (*asked, *repeats) = (Instant::now(), 0);
                self.saying.clear();
                self.menu().await;
            }
            Stage::Rating { consultation, .. } if (1..=5).contains(&number) => {
                let message = json!({"type": "consult.rate", "consultation": consultation, "rating": number});
                let _ = self.client.send(message).await;
                self.leave(Ending::HangUp, "thanks");
            }
            _ => {}
        }
    }

    /// The caller went: withdraw what they asked for.
    async fn withdraw(&mut self) {
        let message = match &self.stage {
            Stage::Waiting { request: Some(request) } => {
                json!({"type": "consult.cancel", "request": request})
            }
            Stage::Talking { consultation } => {
                json!({"type": "consult.hangup", "consultation": consultation})
            }
            _ => return,
        };
        let _ = self.client.send(message).await;
        // Wait (briefly) for the server to confirm, so the line is free of it.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(event) = self.client.next().await {
                if matches!(event, Event::Cancelled { .. } | Event::Ended { .. }) {
                    break;
                }
            }
        })
        .await;
    }

    async fn on_event(&mut self, event: Event) -> Option<Ending> {
        match event {
            Event::Queued { request, nobody_on_duty, .. } => {
                if let Stage::Waiting { request: waiting } = &mut self.stage {
                    *waiting = Some(request.clone());
                }
                // A callback's lawyer asked for it: the caller waits for them.
                if nobody_on_duty && self.asked.is_none() {
                    // Nobody who could take it is on duty: say so, and pass the
                    // caller to the hotline's own queue rather than wait forever.
                    let _ = self.client.send(json!({"type": "consult.cancel", "request": request})).await;
                    let ending = match &self.context.config.fallback {
                        Some(target) => Ending::Transfer(target.clone()),
                        None => Ending::HangUp,
                    };
                    self.leave(ending, "nobody");
                }
            }
            Event::Started { consultation, room, token } => {
                self.saying.clear();
                self.caller.clear();
                // Sent again (`resumed`) when the room moved or the line came
                // back: the old peer connection is done with.
                if let Some((_, old)) = self.bridge.take() {
                    old.close().await;
                }
                match Bridge::new(&self.line.terminal, self.leg_ip()).await {
                    Ok(bridge) => self.bridge = Some((room, bridge)),
                    Err(error) => tracing::warn!(%error, "no peer connection for the phone leg"),
                }
                let _ = self.client.send(json!({"type": "rtc.join", "token": token})).await;
                self.consultation = Some(consultation.clone());
                self.stage = Stage::Talking { consultation };
            }
            Event::Offer { room, sdp } => {
                if let Some((joined, bridge)) = &mut self.bridge
                    && *joined == room
                {
                    match bridge.answer(sdp).await {
                        Ok(answer) => {
                            let _ = self
                                .client
                                .send(json!({"type": "rtc.answer", "room": room, "sdp": answer}))
                                .await;
                        }
                        Err(error) => tracing::warn!(%error, "the relay's offer was not answered"),
                    }
                }
            }
            // Only this call's: a line may hear of an earlier caller's end.
            Event::Ended { consultation, requeued, .. }
                if self.consultation.as_ref() == Some(&consultation) =>
            {
                if let Some((_, bridge)) = self.bridge.take() {
                    bridge.close().await;
                }
                if requeued {
                    // The lawyer was lost: back to the front of the queue.
                    self.stage = Stage::Waiting { request: None };
                    self.say("waiting");
                } else {
                    self.say("rate");
                    self.stage = Stage::Rating { consultation, until: Instant::now() + RATING_WAIT };
                }
            }
            Event::Cancelled { request } => {
                if matches!(&self.stage, Stage::Waiting { request: Some(mine) } if *mine == request) {
                    self.leave(Ending::HangUp, "goodbye");
                }
            }
            Event::Error { code, message } => tracing::debug!(%code, %message, "the live path refused"),
            Event::Welcome {}
            | Event::Ended { .. }
            | Event::Peer { .. }
            | Event::Rated { .. }
            | Event::RoomClosed { .. }
            | Event::Other => {}
        }
        None
    }

    fn leg_ip(&self) -> std::net::IpAddr {
        self.context.config.media_ip.unwrap_or(self.context.config.sip_listen.ip())
    }

    /// Every 20 ms: one frame each way, and the timers.
    async fn tick(&mut self) -> Option<Ending> {
        let now = Instant::now();
        // The menu's and the rating's time to answer runs from the end of their prompt.
        if !self.saying.is_empty() {
            match &mut self.stage {
                Stage::Menu { asked, .. } => *asked = now,
                Stage::Rating { until, .. } => *until = now + RATING_WAIT,
                _ => {}
            }
        }
        // A call whose RTP stopped is a call nobody is on.
        let received = self.leg.stats.received.load(Ordering::Relaxed);
        if received != self.last_received.0 {
            self.last_received = (received, now);
        } else if now.duration_since(self.last_received.1).as_secs() >= self.context.config.media_timeout_secs
            && !self.leg.agreed().on_hold
        {
            tracing::info!("no media from the phone: hanging up");
            self.withdraw().await;
            return Some(Ending::HangUp);
        }
        // Up: the caller's voice into the room.
        let mut up = [0i16; FRAME];
        self.caller.mix_into(&mut up);
        if let Some((_, bridge)) = &mut self.bridge {
            bridge.send(&up).await;
        }
        // Down: a prompt, or hold audio, or the room.
        let mut down = [0i16; FRAME];
        if !self.saying.is_empty() {
            for slot in down.iter_mut() {
                *slot = self.saying.pop_front().unwrap_or(0);
            }
        } else {
            match &mut self.stage {
                Stage::Waiting { .. } => match &self.context.hold {
                    Some(hold) if !hold.is_empty() => {
                        for slot in down.iter_mut() {
                            *slot = hold[self.hold_at % hold.len()];
                            self.hold_at += 1;
                        }
                    }
                    _ => down = self.tone.next_frame(),
                },
                Stage::Talking { .. } => {
                    if let Some((_, bridge)) = &self.bridge {
                        bridge.mix(&mut down);
                    }
                }
                Stage::Menu { asked, repeats, .. } => {
                    if now.duration_since(*asked) > MENU_WAIT {
                        if *repeats >= MENU_REPEATS {
                            self.leave(Ending::HangUp, "goodbye");
                        } else {
                            (*asked, *repeats) = (now, *repeats + 1);
                            self.menu().await;
                        }
                    }
                }
                Stage::Rating { until, .. } => {
                    if now > *until {
                        self.leave(Ending::HangUp, "goodbye");
                    }
                }
                Stage::Leaving { ending } => return Some(ending.clone()),
            }
        }
        self.leg.send(&down).await;
        None
    }
}
