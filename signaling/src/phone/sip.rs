//! The SIP side (RFC 3261, over UDP and TCP, with `rsipstack`): who may call,
//! which number means what, and each call's dialog from INVITE to BYE. The
//! call itself runs in [`super::call`].
//!
//! An INVITE is refused, in this order: from an address that is not a
//! configured peer (403), beyond the peer's INVITE rate (503), without valid
//! digest credentials when they are configured (401 with a challenge, then
//! 403), to a number with no route (404), with no codec we speak (488),
//! beyond `max_calls` (486). Otherwise it is answered at once (200 with our SDP),
//! so the caller hears the menu or the hold audio from the first moment.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::headers::auth::{Algorithm, Qop, Scheme as AuthScheme};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::typed::WwwAuthenticate;
use rsipstack::sip::{Header, Method, StatusCode, StatusCodeKind, Transport, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TcpListenerConnection, TransportLayer};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use super::call::{self, Context, Ending, FromSip};
use super::lines::Lines;
use super::rtp::Leg;
use super::sdp;

/// The running gateway; dropping it does not stop it: `shutdown` does.
#[derive(Debug)]
pub struct Gateway {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub dialer: Dialer,
    cancel: CancellationToken,
}

impl Gateway {
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

struct Shared {
    context: Arc<Context>,
    lines: Lines,
    dialogs: Arc<DialogLayer>,
    udp: SipAddr,
    tcp: SipAddr,
    active: AtomicUsize,
    /// INVITEs per peer address in the current second.
    invites: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Nonces we issued, and when (a challenge is answered within 5 minutes).
    nonces: Mutex<HashMap<String, Instant>>,
    /// Consultations whose caller is being called back now (one call each).
    calling_back: Mutex<std::collections::HashSet<String>>,
}

const NONCE_LIFETIME: Duration = Duration::from_secs(300);
const MAX_NONCES: usize = 4_096;
/// An INVITE that is never ACKed or answered is given up by the stack; a
/// caller who never sends media is hung up by the call (`media_timeout_secs`).
const USER_AGENT: &str = concat!("cloudlaw/", env!("CARGO_PKG_VERSION"));

/// Starts listening for SIP on `config.sip_listen` (UDP and TCP, same port).
pub async fn start(context: Arc<Context>, lines: Lines) -> Result<Gateway, String> {
    let listen = context.config.sip_listen;
    let cancel = CancellationToken::new();
    let transports = TransportLayer::new(cancel.child_token());
    let udp = UdpConnection::create_connection(listen, None, Some(cancel.child_token()))
        .await
        .map_err(|e| format!("phone.sip_listen {listen} (UDP): {e}"))?;
    let udp_addr = udp.get_addr().clone();
    let bound = udp_addr.get_socketaddr().map_err(|e| e.to_string())?;
    transports.add_transport(udp.into());
    // TCP on the same port as UDP (checked free now: the stack binds later).
    let tcp_listen = SocketAddr::new(listen.ip(), bound.port());
    std::net::TcpListener::bind(tcp_listen)
        .map_err(|e| format!("phone.sip_listen {tcp_listen} (TCP): {e}"))?;
    let tcp = TcpListenerConnection::new(tcp_listen, None).await.map_err(|e| e.to_string())?;
    let tcp_addr = tcp.get_addr().clone();
    transports.add_transport(tcp.into());
    let endpoint = EndpointBuilder::new()
        .with_cancel_token(cancel.clone())
        .with_transport_layer(transports)
        .with_user_agent(USER_AGENT)
        .with_allows(vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Info,
            Method::Options,
        ])
        .build();
    let incoming = endpoint.incoming_transactions().map_err(|e| e.to_string())?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let shared = Arc::new(Shared {
        context,
        lines,
        dialogs,
        udp: udp_addr,
        tcp: tcp_addr,
        active: AtomicUsize::new(0),
        invites: Mutex::default(),
        nonces: Mutex::default(),
        calling_back: Mutex::default(),
    });
    if shared.context.config.calls_back() {
        tokio::spawn(forget_old_numbers(Arc::clone(&shared), cancel.clone()));
    }
    let inner = endpoint.inner.clone();
    tokio::spawn(async move {
        if let Err(error) = inner.serve().await {
            tracing::warn!(%error, "the SIP endpoint stopped");
        }
    });
    let dialer = Dialer(Arc::clone(&shared));
    tokio::spawn(incoming_loop(shared, incoming));
    tracing::info!(udp = %bound, tcp = %tcp_listen, "SIP gateway listening");
    Ok(Gateway { udp: bound, tcp: tcp_listen, dialer, cancel })
}

fn source(tx: &Transaction) -> Option<SocketAddr> {
    tx.connection.as_ref().and_then(|c| c.get_remote_addr()).and_then(|a| a.get_socketaddr().ok())
}

async fn incoming_loop(shared: Arc<Shared>, mut incoming: TransactionReceiver) {
    while let Some(mut tx) = incoming.recv().await {
        let Some(from) = source(&tx) else { continue };
        if !shared.context.config.allows(from.ip()) {
            // Unknown peers learn nothing but that they are not one.
            shared.context.metrics.phone_call("refused_peer");
            if tx.original.method != Method::Ack {
                let _ = tx.reply(StatusCode::Forbidden).await;
            }
            continue;
        }
        let in_dialog = tx.original.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
        if in_dialog {
            match shared.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(error) = dialog.handle(&mut tx).await {
                            tracing::debug!(%error, "in-dialog request not handled");
                        }
                    });
                }
                None if tx.original.method == Method::Ack => {}
                None => {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
            }
            continue;
        }
        match tx.original.method {
            Method::Invite => {
                if let Some(status) = shared.admit(from.ip()) {
                    let _ = tx.reply(status).await;
                    continue;
                }
                if shared.context.config.username.is_some() && !shared.authenticated(&mut tx).await {
                    continue;
                }
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { shared.invite(tx).await });
            }
            Method::Options => {
                let allow = Header::Allow("INVITE, ACK, BYE, CANCEL, INFO, OPTIONS".into());
                let _ = tx.reply_with(StatusCode::OK, vec![allow], None).await;
            }
            Method::Ack => {}
            _ => {
                let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            }
        }
    }
}

impl Shared {
    /// The flood guard: `None` when this INVITE may go on.
    fn admit(&self, peer: IpAddr) -> Option<StatusCode> {
        let now = Instant::now();
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        invites.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(1));
        let (_, count) = invites.entry(peer).or_insert((now, 0));
        *count += 1;
        if *count > self.context.config.invites_per_second {
            self.context.metrics.phone_call("flood");
            return Some(StatusCode::ServiceUnavailable);
        }
        None
    }

    /// Checks the INVITE's digest credentials, or challenges for them.
    async fn authenticated(&self, tx: &mut Transaction) -> bool {
        let config = &self.context.config;
        let (Some(username), Some(password)) = (&config.username, &config.password) else { return true };
        if let Some(header) = tx.original.authorization_header() {
            let raw = header.value().to_string();
            if let Ok(auth) = rsipstack::sip::typed::Authorization::parse(&raw) {
                let issued = {
                    let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
                    nonces.retain(|_, at| at.elapsed() < NONCE_LIFETIME);
                    nonces.contains_key(&auth.nonce)
                };
                if issued
                    && auth.realm == config.realm
                    && auth.username == *username
                    && verify_digest(&auth, password.expose_secret(), &tx.original.method, &raw)
                {
                    return true;
                }
                if issued {
                    self.context.metrics.phone_call("refused_auth");
                    let _ = tx.reply(StatusCode::Forbidden).await;
                    return false;
                }
            }
        }
        let nonce = format!("{:032x}", rand::random::<u128>());
        {
            let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
            if nonces.len() >= MAX_NONCES {
                nonces.retain(|_, at| at.elapsed() < NONCE_LIFETIME / 10);
            }
            nonces.insert(nonce.clone(), Instant::now());
        }
        let challenge = WwwAuthenticate {
            scheme: AuthScheme::Digest,
            realm: config.realm.clone(),
            nonce,
            algorithm: Some(Algorithm::Md5),
            qop: Some(Qop::Auth),
            ..Default::default()
        };
        let _ = tx.reply_with(StatusCode::Unauthorized, vec![challenge.into()], None).await;
        false
    }

    /// Our Contact for a dialog: the transport the INVITE came on.
    fn contact(&self, tx: &Transaction) -> Option<Uri> {
        let tcp = tx.connection.as_ref().map(|c| c.transport()) == Some(Transport::Tcp);
        let text = if tcp {
            format!("sip:cloudlaw@{};transport=tcp", self.tcp.addr)
        } else {
            format!("sip:cloudlaw@{}", self.udp.addr)
        };
        Uri::try_from(text.as_str()).ok()
    }

    async fn invite(self: Arc<Self>, mut tx: Transaction) {
        let metrics = &self.context.metrics;
        let number = tx.original.uri.user().unwrap_or("").to_owned();
        let Some(route) = self.context.config.route(&number).cloned() else {
            metrics.phone_call("unknown_number");
            let _ = tx.reply(StatusCode::NotFound).await;
            return;
        };
        let agreed = match std::str::from_utf8(&tx.original.body)
            .map_err(|e| e.to_string())
            .and_then(|body| sdp::take_offer(body).map_err(|e| e.to_string()))
        {
            Ok(agreed) => agreed,
            Err(error) => {
                tracing::info!(%error, "offer not acceptable");
                metrics.phone_call("not_acceptable");
                let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
        };
        if self.active.fetch_add(1, Ordering::SeqCst) >= self.context.config.max_calls {
            self.active.fetch_sub(1, Ordering::SeqCst);
            metrics.phone_call("busy");
            let _ = tx.reply(StatusCode::BusyHere).await;
            return;
        }
        let _active = Active(&self.active, &metrics.phone_calls_active);
        metrics.phone_calls_active.inc();
        // The caller's number: shown and logged masked only; kept whole only
        // for a callback, when calling back is on.
        let caller = tx
            .original
            .from_header()
            .ok()
            .and_then(|h| h.uri().ok())
            .and_then(|u| u.user().map(str::to_owned))
            .unwrap_or_default();
        let masked = super::mask_number(&caller);
        let line = match self.lines.take(&route.region, &masked, self.context.config.max_calls).await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                metrics.phone_call("busy");
                let _ = tx.reply(StatusCode::BusyHere).await;
                return;
            }
        };
        let media_ip = self.context.config.media_ip.unwrap_or(self.udp_ip());
        let media = match Leg::bind(media_ip, self.context.config.rtp_ports).await {
            Ok(socket) => socket
                .local_addr()
                .map_err(|e| e.to_string())
                .and_then(|local| Leg::new(socket, agreed.clone()).map(|leg| (local, leg))),
            Err(error) => Err(error.to_string()),
        };
        let (local, leg) = match media {
            Ok(media) => media,
            Err(error) => {
                tracing::warn!(%error, "no RTP socket for a call");
                let _ = tx.reply(StatusCode::ServiceUnavailable).await;
                self.lines.release(line).await;
                return;
            }
        };
        let (state_tx, state_rx) = self.dialogs.new_dialog_state_channel();
        let dialog = match self.dialogs.get_or_create_server_invite(&tx, state_tx, None, self.contact(&tx)) {
            Ok(dialog) => dialog,
            Err(error) => {
                tracing::info!(%error, "INVITE refused");
                let _ = tx.reply(StatusCode::BadRequest).await;
                self.lines.release(line).await;
                return;
            }
        };
        let mut driver = dialog.clone();
        let transaction = tokio::spawn(async move {
            if let Err(error) = driver.handle(&mut tx).await {
                tracing::debug!(%error, "INVITE transaction ended");
            }
        });
        let session = rand::random::<u32>().into();
        let answer = sdp::answer(&agreed, local, session, 1);
        let content_type = vec![Header::ContentType("application/sdp".into())];
        if dialog.accept(Some(content_type), Some(answer.into_bytes())).is_err() {
            self.dialogs.remove_dialog(&dialog.id());
            self.lines.release(line).await;
            transaction.abort();
            return;
        }
        metrics.phone_call("answered");
        tracing::info!(number = %route.number, caller = %masked, codec = agreed.codec.name(), "phone call answered");
        let talk =
            Talk { dialog, states: state_rx, leg, local, session, route, line, number: caller, asked: None };
        self.converse(talk).await;
        transaction.abort();
    }

    /// Carries an answered call (either way) to its end: the dialog's news
    /// to the call, the call's end to the dialog, and the number kept for a
    /// callback when calling back is on.
    async fn converse(self: &Arc<Self>, talk: Talk) {
        let Talk { dialog, states, leg, local, session, route, line, number, asked } = talk;
        let (to_call, from_sip) = mpsc::channel(16);
        let agreed = leg.agreed().clone();
        let events = tokio::spawn(dialog_events(
            Arc::clone(self),
            dialog.clone(),
            states,
            to_call,
            (local, session),
            agreed,
        ));
        let outcome = call::run(&self.context, route, &line, leg, asked, from_sip).await;
        self.lines.release(line).await;
        if let Some(consultation) = &outcome.consultation
            && self.context.config.calls_back()
            && self.context.config.may_call(&number)
            && let Err(error) = self.lines.store().keep_callback_number(consultation, &number).await
        {
            tracing::warn!(%error, "callback number not kept");
        }
        match outcome.ending {
            Ending::CallerHungUp => {}
            Ending::HangUp => {
                let _ = tokio::time::timeout(Duration::from_secs(5), dialog.bye()).await;
            }
            Ending::Transfer(target) => {
                // RFC 3515: the caller's side calls the target; we leave.
                self.context.metrics.phone_call("transferred");
                let refer = Header::Other("Refer-To".into(), format!("<{target}>"));
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    dialog.request(Method::Refer, Some(vec![refer]), None),
                )
                .await
                {
                    Ok(Ok(Some(response))) => {
                        tracing::info!(status = %response.status_code, "caller transferred")
                    }
                    other => tracing::info!(?other, "transfer not taken"),
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), dialog.bye()).await;
            }
        }
        self.dialogs.remove_dialog(&dialog.id());
        events.abort();
    }

    /// Places a callback: INVITE to the trunk, and when answered, a call
    /// like any other whose request rings `callback.asked.lawyer` first.
    async fn call_back(self: Arc<Self>, callback: Callback) {
        let metrics = &self.context.metrics;
        let Some(trunk) = self.context.config.outbound_trunk.clone() else { return };
        if self.active.fetch_add(1, Ordering::SeqCst) >= self.context.config.max_calls {
            self.active.fetch_sub(1, Ordering::SeqCst);
            metrics.phone_call("callback_busy");
            return;
        }
        let _active = Active(&self.active, &metrics.phone_calls_active);
        metrics.phone_calls_active.inc();
        let masked = super::mask_number(&callback.number);
        let limit = self.context.config.max_calls;
        let Ok(Some(line)) = self.lines.take(&callback.route.region, &masked, limit).await else {
            metrics.phone_call("callback_busy");
            return;
        };
        let media_ip = self.context.config.media_ip.unwrap_or(self.udp_ip());
        let bound = Leg::bind(media_ip, self.context.config.rtp_ports).await;
        let Some((socket, local)) = bound.ok().and_then(|s| s.local_addr().ok().map(|local| (s, local)))
        else {
            self.lines.release(line).await;
            return;
        };
        let session: u64 = rand::random::<u32>().into();
        let me = format!("sip:cloudlaw@{}", self.udp.addr);
        let (Ok(caller), Ok(callee)) =
            (Uri::try_from(me.as_str()), Uri::try_from(format!("sip:{}@{trunk}", callback.number).as_str()))
        else {
            self.lines.release(line).await;
            return;
        };
        let option = InviteOption {
            caller: caller.clone(),
            callee,
            contact: caller,
            content_type: Some("application/sdp".into()),
            offer: Some(sdp::offer(local, session).into_bytes()),
            ..Default::default()
        };
        let (state_tx, state_rx) = self.dialogs.new_dialog_state_channel();
        // Ringing for a minute at most; dropping the INVITE cancels it.
        let placed =
            tokio::time::timeout(Duration::from_secs(60), self.dialogs.do_invite(option, state_tx)).await;
        let (dialog, response) = match placed {
            Ok(Ok((dialog, Some(response)))) if response.status_code.kind() == StatusCodeKind::Successful => {
                (dialog, response)
            }
            Ok(Ok((_, response))) => {
                let status = response.map(|r| r.status_code.to_string()).unwrap_or_default();
                tracing::info!(caller = %masked, %status, "callback not answered");
                metrics.phone_call("callback_unanswered");
                self.lines.release(line).await;
                return;
            }
            Ok(Err(error)) => {
                tracing::info!(caller = %masked, %error, "callback failed");
                metrics.phone_call("callback_unanswered");
                self.lines.release(line).await;
                return;
            }
            Err(_) => {
                metrics.phone_call("callback_unanswered");
                self.lines.release(line).await;
                return;
            }
        };
        let agreed = std::str::from_utf8(&response.body)
            .map_err(|e| e.to_string())
            .and_then(|body| sdp::take_offer(body).map_err(|e| e.to_string()));
        let leg = match agreed.and_then(|agreed| Leg::new(socket, agreed)) {
            Ok(leg) => leg,
            Err(error) => {
                tracing::info!(%error, "callback answer not usable");
                let _ = tokio::time::timeout(Duration::from_secs(5), dialog.bye()).await;
                self.dialogs.remove_dialog(&dialog.id());
                self.lines.release(line).await;
                return;
            }
        };
        metrics.phone_call("callback_answered");
        tracing::info!(caller = %masked, "callback answered");
        let talk = Talk {
            dialog,
            states: state_rx,
            leg,
            local,
            session,
            route: callback.route,
            line,
            number: callback.number,
            asked: Some(callback.asked),
        };
        self.converse(talk).await;
    }

    fn udp_ip(&self) -> IpAddr {
        self.udp.get_socketaddr().map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }
}

/// An answered call, handed to [`Shared::converse`].
struct Talk {
    dialog: InviteDialog,
    states: DialogStateReceiver,
    leg: Leg,
    local: SocketAddr,
    session: u64,
    route: super::Route,
    line: super::lines::Line,
    /// The caller's number (kept for a callback only when calling back is on).
    number: String,
    asked: Option<super::Asked>,
}

/// A callback a lawyer asked for.
#[derive(Debug, Clone)]
pub struct Callback {
    /// What is called back (`consultation:<id>`, `appointment:<id>`): one call at a time each.
    pub key: String,
    pub number: String,
    pub asked: super::Asked,
    /// The consultation's or appointment's language, topic and region (`number` is unused).
    pub route: super::Route,
}

/// Places callbacks: the HTTP side's handle on the gateway.
#[derive(Clone)]
pub struct Dialer(Arc<Shared>);

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

impl Dialer {
    /// Whether `key` (see [`Callback::key`]) is being called now.
    pub fn is_calling(&self, key: &str) -> bool {
        self.0.calling_back.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Starts calling; what becomes of the call is in the metrics and the
    /// log. `false` when its key is being called already.
    pub fn call_back(&self, callback: Callback) -> bool {
        let shared = Arc::clone(&self.0);
        if !shared.calling_back.lock().unwrap_or_else(|p| p.into_inner()).insert(callback.key.clone()) {
            return false;
        }
        tokio::spawn(async move {
            let key = callback.key.clone();
            Arc::clone(&shared).call_back(callback).await;
            shared.calling_back.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        });
        true
    }
}

/// Counts a call as active until dropped.
struct Active<'a>(&'a AtomicUsize, &'a prometheus_client::metrics::gauge::Gauge);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.dec();
    }
}

/// Deletes callers' numbers kept longer than `phone.callback_days`, at
/// start and every hour, and logs how many went.
async fn forget_old_numbers(shared: Arc<Shared>, cancel: CancellationToken) {
    let keep = i64::from(shared.context.config.callback_days) * 86_400;
    let mut every = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = cancel.cancelled() => return,
        }
        match shared.lines.store().forget_callback_numbers(crate::unix_now() - keep).await {
            Ok(0) => {}
            Ok(gone) => tracing::info!(gone, "callers' numbers past phone.callback_days deleted"),
            Err(error) => tracing::warn!(%error, "callers' numbers not deleted"),
        }
    }
}

/// A key in a SIP INFO body: `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
pub fn info_digit(content_type: &str, body: &str) -> Option<char> {
    let content_type = content_type.to_ascii_lowercase();
    let value = if content_type.contains("dtmf-relay") {
        body.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            key.trim().eq_ignore_ascii_case("signal").then(|| value.trim().to_owned())
        })?
    } else if content_type.contains("application/dtmf") {
        body.trim().to_owned()
    } else {
        return None;
    };
    let mut chars = value.chars();
    let digit = chars.next()?;
    (chars.next().is_none() && (digit.is_ascii_digit() || digit == '*' || digit == '#')).then_some(digit)
}

/// The dialog's news, passed to the call: BYE, INFO keys, re-INVITEs.
async fn dialog_events(
    shared: Arc<Shared>,
    dialog: InviteDialog,
    mut states: DialogStateReceiver,
    to_call: mpsc::Sender<FromSip>,
    (local, session): (SocketAddr, u64),
    mut current: sdp::Agreed,
) {
    let mut version = 1;
    while let Some(state) = states.recv().await {
        match state {
            DialogState::Info(_, request, handle) => {
                let content_type = request.header_value("Content-Type").unwrap_or_default();
                let body = String::from_utf8_lossy(&request.body);
                let _ = handle.reply(StatusCode::OK).await;
                if let Some(digit) = info_digit(&content_type, &body) {
                    let _ = to_call.send(FromSip::Digit(digit)).await;
                }
            }
            DialogState::Updated(_, request, handle) => {
                if request.method != Method::Invite {
                    let _ = handle.reply(StatusCode::OK).await;
                    continue;
                }
                let offer = std::str::from_utf8(&request.body).unwrap_or("");
                let content_type = vec![Header::ContentType("application/sdp".into())];
                version += 1;
                if offer.trim().is_empty() {
                    // A re-INVITE without a body (a session refresh) asks us
                    // to offer: we offer what is agreed, and keep to it.
                    let again = sdp::Agreed { direction: "sendrecv", ..current.clone() };
                    let ours = sdp::answer(&again, local, session, version);
                    let _ = handle.respond(StatusCode::OK, Some(content_type), Some(ours.into_bytes())).await;
                    continue;
                }
                match sdp::take_offer(offer) {
                    Ok(agreed) => {
                        let answer = sdp::answer(&agreed, local, session, version);
                        let _ = handle
                            .respond(StatusCode::OK, Some(content_type), Some(answer.into_bytes()))
                            .await;
                        current = agreed.clone();
                        let _ = to_call.send(FromSip::Update(agreed)).await;
                    }
                    Err(_) => {
                        let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                    }
                }
            }
            // Progress of a transfer we asked for (RFC 3515 NOTIFY), and OPTIONS pings.
            DialogState::Options(_, _, handle) | DialogState::Notify(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Terminated(id, reason) => {
                tracing::debug!(?reason, "dialog terminated");
                shared.dialogs.remove_dialog(&id);
                let _ = to_call.send(FromSip::Hangup).await;
                break;
            }
            _ => {}
        }
    }
    drop(dialog);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_keys_are_read_from_both_body_kinds() {
        assert_eq!(info_digit("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(info_digit("application/dtmf-relay", "signal= #\r\n"), Some('#'));
        assert_eq!(info_digit("application/dtmf", "7"), Some('7'));
        assert_eq!(info_digit("application/dtmf-relay", "Signal=55"), None);
        assert_eq!(info_digit("text/plain", "5"), None);
        assert_eq!(info_digit("application/dtmf-relay", "Duration=160"), None);
    }
}
