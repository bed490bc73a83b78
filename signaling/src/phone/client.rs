//! A phone call's seat in the live path: a WebSocket client of this server,
//! speaking PROTOCOL.md exactly as a kiosk does, as the call's phone line
//! (a terminal of channel `phone`). The queue, the matcher, the ringing, the
//! room, the dropped-call rules and the rating are therefore the kiosk's, by
//! construction.

use crate::ids::{ConsultationId, RequestId, RoomId};
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What the server tells the line that the call cares about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "welcome")]
    Welcome {},
    #[serde(rename = "consult.queued")]
    Queued { request: RequestId, position: usize, nobody_on_duty: bool },
    #[serde(rename = "consult.cancelled")]
    Cancelled { request: RequestId },
    #[serde(rename = "consult.started")]
    Started { consultation: ConsultationId, room: RoomId, token: String },
    #[serde(rename = "consult.peer")]
    Peer { consultation: ConsultationId, present: bool },
    #[serde(rename = "consult.ended")]
    Ended { consultation: ConsultationId, reason: String, requeued: bool },
    #[serde(rename = "consult.rated")]
    Rated { consultation: ConsultationId },
    #[serde(rename = "rtc.offer")]
    Offer { room: RoomId, sdp: String },
    #[serde(rename = "rtc.closed")]
    RoomClosed { room: RoomId, reason: String },
    #[serde(rename = "error")]
    Error { code: String, message: String },
    /// Anything else (`rtc.connection`, `pong`, ...).
    #[serde(other)]
    Other,
}

/// The line's connection.
#[derive(Debug)]
pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to this server's own `/ws` as the line whose device token is `token`.
    pub async fn connect(server: SocketAddr, token: &str) -> Result<Client, String> {
        let host = match server.ip() {
            ip if ip.is_unspecified() && server.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let url = format!("ws://{host}:{}/ws?token={token}", server.port());
        let (socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
        Ok(Client { socket })
    }

    pub async fn send(&mut self, message: Value) -> Result<(), String> {
        self.socket.send(Message::text(message.to_string())).await.map_err(|e| e.to_string())
    }

    /// The next event; `None` when the connection is gone.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => match serde_json::from_str::<Event>(text.as_str()) {
                    Ok(event) => return Some(event),
                    Err(error) => tracing::debug!(%error, "unexpected message on the phone line"),
                },
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Asks for a lawyer; a callback names the lawyer who asked for it, and
    /// the appointment it keeps.
    pub async fn request(
        &mut self,
        language: &str,
        topic: &str,
        asked: Option<&super::Asked>,
    ) -> Result<(), String> {
        let (lawyer, appointment) = match asked {
            Some(asked) => (Some(asked.lawyer.as_str()), asked.appointment.as_deref()),
            None => (None, None),
        };
        self.send(json!({
            "type": "consult.request", "language": language, "topic": topic,
            "lawyer": lawyer, "appointment": appointment,
        }))
        .await
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
