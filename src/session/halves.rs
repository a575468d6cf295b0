//! The two halves of a session, each usable from its own task, and the typed layer on
//! them: serializing sends, deserializing receives, the `Stream` and `Sink` of frames.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::converter::Converter;
use crate::error::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::trace;

use super::{RecvHalf, SendHalf, Session};

impl<C> SendHalf<C> {
    /// See [`Session::send`]. Not cancel safe: cancelled, the frame was either not queued or
    /// queued whole and still goes out.
    pub async fn send(&mut self, frame: Frame) -> Result<(), Error> {
        let mut frame = Some(frame);
        std::future::poll_fn(|cx| self.link.poll_send(cx, &mut frame, true)).await
    }

    /// See [`Session::feed`]. Cancel safe: cancelled, nothing was queued.
    pub async fn feed(&mut self, frame: Frame) -> Result<(), Error> {
        let mut frame = Some(frame);
        std::future::poll_fn(|cx| self.link.poll_send(cx, &mut frame, false)).await
    }

    /// See [`Session::flush`]. Cancel safe: what is not written stays queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.link.poll_flush(cx)).await
    }

    /// Sends a close frame with `reason` and returns without waiting for the peer's answer,
    /// unlike [`Session::close`]: the receiving half keeps receiving what the peer sent
    /// before it answered, then its close frame, then [`Error::Closed`]. Keep receiving on
    /// the other half until then, or data the peer sent is lost with the connection.
    ///
    /// Cancel safe: calling it again sends the close frame if it was not queued, and gives
    /// [`Error::Closed`] if it was.
    pub async fn close(&mut self, reason: CloseReason) -> Result<(), Error> {
        self.send(Frame::Close(Some(reason))).await
    }

    /// See [`Session::close_reason`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.link.close_reason()
    }

    /// See [`Session::converter`].
    pub fn converter(&self) -> &C {
        &self.converter
    }
}

impl<C: Converter> SendHalf<C> {
    /// See [`Session::send_serialized`]. Not cancel safe, as [`SendHalf::send`].
    pub async fn send_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let frame = self.converter.serialize(value)?;
        self.send(frame).await
    }

    /// See [`Session::feed_serialized`]. Cancel safe: cancelled, nothing was queued.
    pub async fn feed_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let frame = self.converter.serialize(value)?;
        self.feed(frame).await
    }
}

impl<C> RecvHalf<C> {
    /// See [`Session::receive`]. Cancel safe: nothing received is lost.
    pub async fn receive(&mut self) -> Result<Frame, Error> {
        std::future::poll_fn(|cx| self.link.poll_receive(cx)).await
    }

    /// See [`Session::close_reason`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.link.close_reason()
    }

    /// See [`Session::converter`].
    pub fn converter(&self) -> &C {
        &self.converter
    }
}

impl<C: Converter> RecvHalf<C> {
    /// See [`Session::receive_deserialized`]. Cancel safe: nothing received is lost.
    pub async fn receive_deserialized<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let frame = self.receive_message().await?;
        self.converter
            .deserialize(&frame)
            .inspect_err(|error| self.trace_decode(error))
    }

    /// See [`Session::receive_message`]. Cancel safe: nothing received is lost.
    pub async fn receive_message(&mut self) -> Result<Frame, Error> {
        loop {
            let frame = self.receive().await?;
            if let Some(message) = message(&self.converter, frame) {
                return message;
            }
        }
    }

    /// See [`Session::incoming_deserialized`].
    pub fn incoming_deserialized<T: DeserializeOwned>(&mut self) -> Deserialized<'_, C, T> {
        Deserialized {
            rx: self,
            _type: PhantomData,
        }
    }
}

/// What a typed receive makes of a received frame: `None` for pings and pongs, which it
/// skips; an error for the peer's close and for frames the converter does not read.
fn message<C: Converter>(converter: &C, frame: Frame) -> Option<Result<Frame, Error>> {
    Some(match frame {
        Frame::Ping(_) | Frame::Pong(_) => return None,
        Frame::Close(reason) => {
            Err(Error::Closed(reason.unwrap_or_else(|| {
                CloseReason::new(CloseCode::NoStatus, "")
            })))
        }
        frame if converter.is_applicable(&frame) => Ok(frame),
        frame => Err(Error::UnexpectedFrame {
            converter: converter.name(),
            frame,
        }),
    })
}

/// Decodes a received frame for a typed receive; `None` for pings and pongs.
fn decode<C: Converter, T: DeserializeOwned>(
    converter: &C,
    frame: Frame,
) -> Option<Result<T, Error>> {
    message(converter, frame).map(|message| message.and_then(|frame| converter.deserialize(&frame)))
}

impl<C> RecvHalf<C> {
    /// Records a message that did not decode, at `trace` level: one event per message.
    fn trace_decode(&self, error: &Error) {
        let error = crate::error::Chain(error);
        trace::event!(
            trace,
            &self.link.span,
            "message did not decode",
            error = trace::display(error)
        );
    }

    /// The last item of a stream: nothing after a clean close, the error once otherwise.
    fn end_stream<T>(&mut self, error: Error) -> Option<Result<T, Error>> {
        self.stream_done = true;
        match &error {
            Error::Closed(reason) if reason.code != CloseCode::Abnormal => None,
            _ => Some(Err(error)),
        }
    }
}

/// The typed stream of [`Session::incoming_deserialized`].
pub struct Deserialized<'a, C, T> {
    rx: &'a mut RecvHalf<C>,
    _type: PhantomData<fn() -> T>,
}

impl<C: Converter, T: DeserializeOwned> Stream for Deserialized<'_, C, T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let rx = &mut *self.get_mut().rx;
        if rx.stream_done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(rx.link.poll_receive(cx)) {
                // The close frame is followed by the end of the session, which ends the stream.
                Ok(Frame::Close(_)) => continue,
                Ok(frame) => {
                    if let Some(item) = decode(&rx.converter, frame) {
                        return Poll::Ready(Some(item.inspect_err(|error| rx.trace_decode(error))));
                    }
                }
                Err(error) => return Poll::Ready(rx.end_stream(error)),
            }
        }
    }
}

impl<C> Stream for RecvHalf<C> {
    type Item = Result<Frame, Error>;

    /// Every frame [`RecvHalf::receive`] would give, then the end of the stream when the
    /// session closes (after yielding the error if it ended abnormally).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.stream_done {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(this.link.poll_receive(cx)) {
            Ok(frame) => Some(Ok(frame)),
            Err(error) => this.end_stream(error),
        })
    }
}

impl<C> SendHalf<C> {
    /// See [`Link::compresses_alone`](super::link::Link::compresses_alone).
    pub(crate) fn compresses_alone(&self) -> Option<crate::wire::Alone> {
        self.link.compresses_alone()
    }

    /// [`Sink::start_send`] of a data frame whose payload was compressed for this session
    /// and others alike; see [`SendHalf::compresses_alone`].
    pub(crate) fn start_send_compressed(
        &mut self,
        frame: &Frame,
        compressed: bytes::Bytes,
    ) -> Result<(), Error> {
        self.link.start_send_compressed(frame, compressed)
    }
}

impl<C> Sink<Frame> for SendHalf<C> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.link.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Error> {
        self.link.start_send(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.link.poll_flush(cx)
    }

    /// Sends a 1000 close frame and flushes it.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.closing {
            ready!(this.link.poll_ready(cx))?;
            this.link.start_send(Frame::close(CloseCode::Normal, ""))?;
            this.closing = true;
        }
        match ready!(this.link.poll_flush(cx)) {
            Ok(()) | Err(Error::Closed(_)) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<C> Stream for Session<C> {
    type Item = Result<Frame, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().rx).poll_next(cx)
    }
}

impl<C> Sink<Frame> for Session<C> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().tx).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().tx).start_send(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().tx).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().tx).poll_close(cx)
    }
}
