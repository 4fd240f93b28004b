//! Reading a task's inputs: whichever has a message, round robin, leaving
//! alone the inputs a barrier alignment blocks, so that their messages wait in
//! their bounded channels and their upstream is backpressured.

use std::task::Poll;

use tokio::sync::mpsc;

use crate::message::Message;

/// A task's input channels.
pub(super) struct Inputs {
    rx: Vec<Option<mpsc::Receiver<Message>>>,
    next: usize,
}

impl Inputs {
    pub fn new(rx: Vec<mpsc::Receiver<Message>>) -> Self {
        Self {
            rx: rx.into_iter().map(Some).collect(),
            next: 0,
        }
    }

    /// The next message of an input that is not `blocked`, with the input's
    /// index; None once every input is closed.
    pub async fn recv(&mut self, blocked: &[bool]) -> Option<(usize, Message)> {
        std::future::poll_fn(|cx| {
            let n = self.rx.len();
            let mut open = false;
            for k in 0..n {
                let i = (self.next + k) % n;
                let Some(rx) = self.rx[i].as_mut() else {
                    continue;
                };
                if blocked.get(i).copied().unwrap_or(false) {
                    // Woken by the other inputs, whose barriers unblock it.
                    open = true;
                    continue;
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(m)) => {
                        self.next = (i + 1) % n;
                        return Poll::Ready(Some((i, m)));
                    }
                    Poll::Ready(None) => self.rx[i] = None,
                    Poll::Pending => open = true,
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocked input is not read however much it holds; the others are.
    #[tokio::test]
    async fn a_blocked_input_is_left_in_its_channel() {
        let (tx0, rx0) = mpsc::channel(4);
        let (tx1, rx1) = mpsc::channel(4);
        let mut inputs = Inputs::new(vec![rx0, rx1]);
        for id in 0..4 {
            tx0.send(Message::Barrier(id)).await.expect("send");
        }
        tx1.send(Message::Idle).await.expect("send");
        let got = inputs.recv(&[true, false]).await.map(|(i, _)| i);
        assert_eq!(got, Some(1));
        assert!(
            tx0.try_send(Message::Idle).is_err(),
            "input 0's channel stays full: its upstream waits"
        );
        let got = inputs.recv(&[false, false]).await.map(|(i, _)| i);
        assert_eq!(got, Some(0));
        drop((tx0, tx1));
        let mut rest = 0;
        while inputs.recv(&[false, false]).await.is_some() {
            rest += 1;
        }
        assert_eq!(rest, 3, "the rest of input 0, then the end");
    }
}
