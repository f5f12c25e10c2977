//! The retrieval menu as a state machine: keys in, actions out. The adapter
//! performs the actions (play, change state, ...) in order.
//!
//! Main menu and message keys:
//! `1` first message, `4` previous, `5` repeat, `6` next, `7` delete /
//! undelete, `9` save, `8` forward, `0` mailbox options, `#` exit.

/// One thing for the adapter to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Play message `i` (envelope and audio); a new message becomes old.
    Play(usize),
    /// "No more messages" (after the last one, or none at all).
    NoMore,
    /// Mark message `i` deleted.
    Delete(usize),
    /// Restore message `i` from deleted (to old).
    Undelete(usize),
    /// Mark message `i` saved.
    Save(usize),
    /// Forward message `i` to another mailbox with a comment.
    Forward(usize),
    /// The mailbox options menu.
    Options,
    /// Say the menu again (timeout or unknown key).
    Help,
    /// Goodbye.
    Exit,
}

/// The menu over `count` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    count: usize,
    /// The message last played, if any.
    current: Option<usize>,
    deleted: Vec<bool>,
    timeouts: u32,
}

/// Silent rounds (no key) before the menu says goodbye.
pub const MAX_TIMEOUTS: u32 = 3;

impl Menu {
    /// A menu over `count` messages, none played yet.
    pub fn new(count: usize) -> Menu {
        Menu {
            count,
            current: None,
            deleted: vec![false; count],
            timeouts: 0,
        }
    }

    /// The message last played.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Whether message `i` is marked deleted in this session.
    pub fn is_deleted(&self, i: usize) -> bool {
        self.deleted.get(i).copied().unwrap_or(false)
    }

    fn play(&mut self, i: usize) -> Action {
        if i < self.count {
            self.current = Some(i);
            Action::Play(i)
        } else {
            Action::NoMore
        }
    }

    fn next(&mut self) -> Action {
        let i = self.current.map_or(0, |c| c + 1);
        self.play(i)
    }

    /// The actions for `key`.
    pub fn on_key(&mut self, key: char) -> Vec<Action> {
        self.timeouts = 0;
        match (key, self.current) {
            ('#', _) => vec![Action::Exit],
            ('0', _) => vec![Action::Options],
            ('1', _) => vec![self.play(0)],
            ('6', _) => vec![self.next()],
            ('4', Some(c)) => vec![self.play(c.saturating_sub(1))],
            ('5', Some(c)) => vec![self.play(c)],
            ('4' | '5', None) => vec![self.play(0)],
            ('7', Some(c)) => {
                if self.deleted[c] {
                    self.deleted[c] = false;
                    vec![Action::Undelete(c)]
                } else {
                    self.deleted[c] = true;
                    vec![Action::Delete(c), self.next()]
                }
            }
            ('9', Some(c)) => {
                self.deleted[c] = false;
                vec![Action::Save(c), self.next()]
            }
            ('8', Some(c)) => vec![Action::Forward(c)],
            _ => vec![Action::Help],
        }
    }

    /// No key within the timeout: say the menu again, or exit after
    /// [`MAX_TIMEOUTS`] silent rounds.
    pub fn on_timeout(&mut self) -> Vec<Action> {
        self.timeouts += 1;
        if self.timeouts >= MAX_TIMEOUTS {
            vec![Action::Exit]
        } else {
            vec![Action::Help]
        }
    }
}

/// The mailbox options menu (`0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsAction {
    Record(crate::greeting::GreetingKind),
    ClearTemporary,
    ChangePin,
    Back,
    Invalid,
}

/// `1` unavailable, `2` busy, `3` no-answer, `4` temporary, `5` closed
/// (outside office hours), `6` name, `7` clear the temporary greeting,
/// `8` change PIN, `*` or `#` back.
pub fn options_key(key: char) -> OptionsAction {
    use crate::greeting::GreetingKind as K;
    match key {
        '1' => OptionsAction::Record(K::Unavailable),
        '2' => OptionsAction::Record(K::Busy),
        '3' => OptionsAction::Record(K::NoAnswer),
        '4' => OptionsAction::Record(K::Temporary),
        '5' => OptionsAction::Record(K::Closed),
        '6' => OptionsAction::Record(K::Name),
        '7' => OptionsAction::ClearTemporary,
        '8' => OptionsAction::ChangePin,
        '*' | '#' => OptionsAction::Back,
        _ => OptionsAction::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    #[test]
    fn navigation() {
        let mut m = Menu::new(3);
        assert_eq!(m.on_key('6'), vec![Play(0)]);
        assert_eq!(m.on_key('6'), vec![Play(1)]);
        assert_eq!(m.on_key('5'), vec![Play(1)]);
        assert_eq!(m.on_key('4'), vec![Play(0)]);
        assert_eq!(m.on_key('4'), vec![Play(0)]);
        assert_eq!(m.on_key('1'), vec![Play(0)]);
        m.on_key('6');
        m.on_key('6');
        assert_eq!(m.on_key('6'), vec![NoMore]);
        assert_eq!(m.current(), Some(2));
        assert_eq!(m.on_key('#'), vec![Exit]);
        assert_eq!(m.on_key('0'), vec![Options]);
        assert_eq!(m.on_key('3'), vec![Help]);
    }

    #[test]
    fn message_keys_need_a_current_message() {
        let mut m = Menu::new(2);
        assert_eq!(m.on_key('7'), vec![Help]);
        assert_eq!(m.on_key('9'), vec![Help]);
        assert_eq!(m.on_key('8'), vec![Help]);
    }

    #[test]
    fn state_keys() {
        let mut m = Menu::new(2);
        m.on_key('1');
        assert_eq!(m.on_key('7'), vec![Delete(0), Play(1)]);
        assert!(m.is_deleted(0));
        assert_eq!(m.on_key('4'), vec![Play(0)]);
        assert_eq!(m.on_key('7'), vec![Undelete(0)]);
        assert!(!m.is_deleted(0));
        assert_eq!(m.on_key('8'), vec![Forward(0)]);
        assert_eq!(m.on_key('9'), vec![Save(0), Play(1)]);
        assert_eq!(m.on_key('9'), vec![Save(1), NoMore]);
    }

    #[test]
    fn empty_mailbox_and_timeouts() {
        let mut m = Menu::new(0);
        assert_eq!(m.on_key('1'), vec![NoMore]);
        assert_eq!(m.on_key('7'), vec![Help]);
        assert_eq!(m.on_timeout(), vec![Help]);
        assert_eq!(m.on_timeout(), vec![Help]);
        assert_eq!(m.on_timeout(), vec![Exit]);
        // A key resets the count.
        let mut m = Menu::new(0);
        m.on_timeout();
        m.on_timeout();
        m.on_key('5');
        assert_eq!(m.on_timeout(), vec![Help]);
    }

    #[test]
    fn options_keys() {
        use crate::greeting::GreetingKind as K;
        assert_eq!(options_key('2'), OptionsAction::Record(K::Busy));
        assert_eq!(options_key('4'), OptionsAction::Record(K::Temporary));
        assert_eq!(options_key('7'), OptionsAction::ClearTemporary);
        assert_eq!(options_key('8'), OptionsAction::ChangePin);
        assert_eq!(options_key('*'), OptionsAction::Back);
        assert_eq!(options_key('9'), OptionsAction::Invalid);
    }
}
