//! The RTP socket: async receive on the tokio reactor, synchronous non-blocking send.
//!
//! On Unix the socket is registered with the reactor for *read* readiness only
//! (`AsyncFd::with_interest(.., READABLE)`). A `tokio::net::UdpSocket` registers for
//! reads and writes, and with edge-triggered epoll every packet the pacer sends then
//! raises a write-space event that wakes a tokio worker: 50,000 useless wake-ups a
//! second at 1,000 sessions (seen in `perf`: about a quarter of the process's CPU at
//! 500 sessions). Registering takes one small `unsafe` call (tokio 1.54 made fd
//! registration `unsafe` for I/O safety; the invariant holds trivially here). Sends never wait for readiness: a full
//! socket buffer drops the frame, which is right for real-time audio.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// One bound, non-blocking UDP socket.
pub(crate) struct RtpSocket {
    #[cfg(unix)]
    inner: tokio::io::unix::AsyncFd<UdpSocket>,
    #[cfg(not(unix))]
    inner: tokio::net::UdpSocket,
}

impl RtpSocket {
    /// Wraps a bound socket; must be called inside a tokio runtime.
    pub(crate) fn new(socket: UdpSocket) -> io::Result<RtpSocket> {
        socket.set_nonblocking(true)?;
        #[cfg(unix)]
        // SAFETY: `UdpSocket` owns its file descriptor; `AsyncFd` takes ownership of the
        // socket and neither replaces nor closes the descriptor while registered (only
        // `send_to`/`recv_from` are called through `get_ref`), which is the contract of
        // `register_with_interest`. This is the only `unsafe` in the crate: the safe
        // alternative (`tokio::net::UdpSocket`) always registers write interest.
        #[allow(unsafe_code)]
        let inner = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)?
        };
        #[cfg(not(unix))]
        let inner = tokio::net::UdpSocket::from_std(socket)?;
        Ok(RtpSocket { inner })
    }

    /// Receives one datagram.
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        #[cfg(unix)]
        loop {
            let mut guard = self.inner.readable().await?;
            match guard.try_io(|s| s.get_ref().recv_from(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
        #[cfg(not(unix))]
        self.inner.recv_from(buf).await
    }

    /// Sends one datagram now, or fails (`WouldBlock` when the buffer is full).
    pub(crate) fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        #[cfg(unix)]
        return self.inner.get_ref().send_to(packet, to);
        #[cfg(not(unix))]
        self.inner.try_send_to(packet, to)
    }
}
