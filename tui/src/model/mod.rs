//! The model: everything the screen shows, as plain data. Only `update`
//! changes it; the view only reads it.

pub mod events;
pub mod network;
pub mod nodes;
pub mod orders;
pub mod queues;

use contracts::api::DriverView;
use contracts::status::Faults;
use contracts::trust::role;
use time::OffsetDateTime;

pub use events::{EventLog, Level, LogLine};
pub use nodes::{NodeRow, Nodes, Proc, Shown};
pub use orders::{OrderBook, OrderEntry};
pub use queues::{QueueRow, Queues};

use crate::msg::Effect;

/// The panels, in `tab` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Panel {
    /// Node processes.
    Nodes,
    /// Work queues and DLQs.
    Queues,
    /// Orders.
    Orders,
    /// Drivers.
    Drivers,
    /// Events & alerts.
    Events,
}

impl Panel {
    /// Every panel, in `tab` order.
    pub const ALL: [Panel; 5] = [
        Panel::Nodes,
        Panel::Queues,
        Panel::Orders,
        Panel::Drivers,
        Panel::Events,
    ];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Nodes => "Nodes",
            Panel::Queues => "Queues",
            Panel::Orders => "Orders",
            Panel::Drivers => "Drivers",
            Panel::Events => "Events & alerts",
        }
    }

    /// The next (`forward`) or previous panel.
    pub fn cycle(self, forward: bool) -> Panel {
        let i = Panel::ALL.iter().position(|p| *p == self).unwrap_or(0);
        let n = Panel::ALL.len();
        Panel::ALL[if forward { (i + 1) % n } else { (i + n - 1) % n }]
    }
}

/// A fault the fault menu can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultItem {
    /// Added latency per message or request.
    Latency,
    /// Share of messages or requests that fail.
    ErrorRate,
    /// Share of incoming messages dropped unacknowledged.
    Drop,
    /// Share of incoming messages handled twice (and of published events
    /// sent twice).
    Duplicate,
    /// Share of published events held back so that later ones overtake them.
    Reorder,
    /// Take no work (the node stays connected).
    Pause,
    /// An ingredient the kitchen has run out of.
    OutOfStock,
    /// The network faults on one of the node's proxied links (its index
    /// in [`NodeRow::links`]).
    Network(usize),
}

/// A popup over the panels; it takes the keys while open.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// Every key.
    Help,
    /// A destructive action waiting for `y`.
    Confirm {
        /// The question, naming the target.
        question: String,
        /// What `y` does.
        effect: Effect,
    },
    /// Faults for one node.
    Faults {
        /// The node.
        id: String,
        /// The selected line.
        cursor: usize,
        /// The faults as they will be sent.
        faults: Faults,
    },
    /// How many orders to place.
    Burst {
        /// What has been typed.
        input: String,
    },
    /// The arguments of a canary of `role` (a "new build").
    Canary {
        /// The role.
        role: crate::topology::Role,
        /// What has been typed.
        input: String,
    },
    /// Stop the nodes or leave them running?
    Quit,
}

/// How the Orders table is sorted (`S` on it cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderSort {
    /// Newest first.
    #[default]
    Age,
    /// By state, in the order an order passes them.
    State,
    /// By kitchen, then newest first.
    Kitchen,
    /// By driver, then newest first.
    Driver,
}

impl OrderSort {
    /// The next one (`S`).
    pub fn next(self) -> OrderSort {
        match self {
            OrderSort::Age => OrderSort::State,
            OrderSort::State => OrderSort::Kitchen,
            OrderSort::Kitchen => OrderSort::Driver,
            OrderSort::Driver => OrderSort::Age,
        }
    }

    /// The column it sorts by, as the header names it.
    pub fn column(self) -> &'static str {
        match self {
            OrderSort::Age => "AGE",
            OrderSort::State => "STATE",
            OrderSort::Kitchen => "KITCHEN",
            OrderSort::Driver => "DRIVER",
        }
    }
}

/// How the Nodes table is sorted (`S` on it cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeSort {
    /// By role (start order), then id.
    #[default]
    Role,
    /// By state (alive first), then role.
    State,
    /// Busiest (messages/s) first.
    Rate,
    /// By id.
    Id,
}

impl NodeSort {
    /// The next one (`S`).
    pub fn next(self) -> NodeSort {
        match self {
            NodeSort::Role => NodeSort::State,
            NodeSort::State => NodeSort::Rate,
            NodeSort::Rate => NodeSort::Id,
            NodeSort::Id => NodeSort::Role,
        }
    }

    /// The column it sorts by, as the header names it.
    pub fn column(self) -> &'static str {
        match self {
            NodeSort::Role => "ROLE",
            NodeSort::State => "STATE",
            NodeSort::Rate => "MSG/S",
            NodeSort::Id => "ID",
        }
    }
}

/// The log view's place (`l` on a node).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogView {
    /// Lines scrolled up from the end; 0 follows the end as it grows.
    pub scroll: usize,
    /// Long lines wrap (`w`), or are cut.
    pub wrap: bool,
    /// Only lines containing this (case-insensitive) are shown (`/`).
    pub search: String,
    /// Typing goes to the search.
    pub searching: bool,
}

/// The tail of a node's log file, as the shell last read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogTail {
    /// The node.
    pub id: String,
    /// The file read.
    pub path: String,
    /// Its last lines, oldest first.
    pub lines: Vec<String>,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
}

impl LogTail {
    /// The lines `view` shows, oldest first: those matching its search.
    pub fn shown<'a>(&'a self, view: &'a LogView) -> impl Iterator<Item = &'a String> + 'a {
        let needle = view.search.to_lowercase();
        self.lines
            .iter()
            .filter(move |l| needle.is_empty() || l.to_lowercase().contains(&needle))
    }
}

/// A full view opened with `enter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// One node's log, following (`l` on a node).
    Log(String),
    /// One order's state machine and trace timeline.
    Order(String),
    /// One queue's dead letters.
    DeadLetters {
        /// The queue (not the DLQ name).
        queue: String,
        /// The selected dead letter.
        cursor: usize,
    },
}

/// Where the operator is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ui {
    /// The focused panel.
    pub focus: Option<Panel>,
    /// The selected row of each panel, by id, so refreshing never moves it.
    pub selected: std::collections::BTreeMap<Panel, String>,
    /// The Orders filter.
    pub filter: String,
    /// Typing goes to the filter.
    pub filtering: bool,
    /// The open popup.
    pub popup: Option<Popup>,
    /// The open detail view.
    pub detail: Option<Detail>,
    /// The scenario's verdict was put away (esc) to see the panels.
    pub verdict_hidden: bool,
    /// A scenario is being played: its bar takes the screen's bottom rows
    /// (set by [`crate::update::step`]).
    pub playing: bool,
    /// A scenario is over and its verdict is up (set by [`crate::update::step`]).
    pub scenario_over: bool,
    /// In an order's detail: the history stepped back to this event (an
    /// index into its steps); `None` follows the order live.
    pub history_step: Option<usize>,
    /// The display does not follow data while frozen.
    pub frozen: bool,
    /// Chaos mode wanted (`c`): breaking nodes while orders stream in.
    pub chaos: bool,
    /// Chaos mode has run: its bar is on screen.
    pub chaos_bar: bool,
    /// The latest canary's stage (`C`), for scenarios' waits.
    pub canary: Option<crate::canary::Stage>,
    /// A one-line answer to the last key ("kitchen-1 is not running").
    pub flash: Option<String>,
    /// The Orders table's order.
    pub order_sort: OrderSort,
    /// The Nodes table's order.
    pub node_sort: NodeSort,
    /// The Events panel scrolled this many lines back from the newest; 0
    /// follows new lines.
    pub events_scroll: usize,
    /// The Events panel shows alerts only (`a`).
    pub alerts_only: bool,
    /// The log view's place.
    pub log_view: LogView,
    /// The order detail scrolled this many lines down.
    pub detail_scroll: usize,
    /// The help popup scrolled this many lines down.
    pub help_scroll: usize,
}

impl Ui {
    /// The focused panel.
    pub fn focused(&self) -> Panel {
        self.focus.unwrap_or(Panel::Nodes)
    }
}

/// Facts about this run, fixed at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunInfo {
    /// The broker URL.
    pub broker: String,
    /// Where nodes keep state.
    pub data_dir: String,
    /// Where logs go.
    pub log_dir: String,
    /// Ingredients a kitchen can run out of (for the fault menu).
    pub ingredients: Vec<String>,
    /// The nodes' links run through this control room's fault proxy
    /// (`--network-faults`): they cannot outlive it.
    pub network_faults: bool,
}

/// Everything the control room knows.
#[derive(Debug, Clone)]
pub struct Model {
    /// The latest clock tick.
    pub now: OffsetDateTime,
    /// Fixed facts.
    pub info: RunInfo,
    /// Nodes by id.
    pub nodes: Nodes,
    /// Queues.
    pub queues: Queues,
    /// Orders.
    pub orders: OrderBook,
    /// Events & alerts.
    pub log: EventLog,
    /// The operator's place.
    pub ui: Ui,
    /// Whether the control room's own broker connection is up.
    pub feed_up: bool,
    /// Orders placed from the keyboard and still awaited.
    pub placing: u32,
    /// Something visible changed since the last draw.
    pub dirty: bool,
    /// Set when the control room should exit.
    pub quitting: Option<bool>,
    /// The log view's text, read by the shell while the view is open.
    pub log_tail: LogTail,
}

impl Model {
    /// A fresh model at `now`.
    pub fn new(info: RunInfo, now: OffsetDateTime) -> Model {
        Model {
            now,
            info,
            nodes: Nodes::new(),
            queues: Queues::default(),
            orders: OrderBook::with_cap(orders::DETAIL_CAP),
            log: EventLog::default(),
            ui: Ui::default(),
            feed_up: false,
            placing: 0,
            dirty: true,
            quitting: None,
            log_tail: LogTail::default(),
        }
    }

    /// Node ids in display order ([`NodeSort`]; ties by role, then id).
    pub fn node_ids(&self) -> Vec<String> {
        let mut rows: Vec<&NodeRow> = self.nodes.values().collect();
        rows.sort_by_key(|r| (role_rank(&r.role), r.id.clone()));
        match self.ui.node_sort {
            NodeSort::Role => {}
            NodeSort::State => rows.sort_by_key(|r| {
                let shown = r.shown(self.now);
                (!shown.is_alive(), shown.label())
            }),
            NodeSort::Rate => rows.sort_by(|a, b| b.rate.total_cmp(&a.rate)),
            NodeSort::Id => rows.sort_by(|a, b| a.id.cmp(&b.id)),
        }
        rows.into_iter().map(|r| r.id.clone()).collect()
    }

    /// The Orders table's rows: those matching the filter, in
    /// [`OrderSort`] order (stable, so ties stay newest first).
    pub fn order_rows(&self) -> Vec<&OrderEntry> {
        let mut rows: Vec<&OrderEntry> = self.orders.recent(&self.ui.filter).collect();
        match self.ui.order_sort {
            OrderSort::Age => {}
            OrderSort::State => rows.sort_by_key(|e| e.fold.state().map(|s| s as u8)),
            // Orders not there yet ("~" sorts after every name) go last.
            OrderSort::Kitchen => rows.sort_by_key(|e| e.fold.kitchen().unwrap_or("~").to_string()),
            OrderSort::Driver => rows.sort_by_key(|e| e.fold.driver().unwrap_or("~").to_string()),
        }
        rows
    }

    /// Every driver of every delivery node: (node id, driver).
    pub fn drivers(&self) -> Vec<(String, DriverView)> {
        self.nodes
            .values()
            .filter(|n| n.shown(self.now).is_alive())
            .flat_map(|n| n.drivers().into_iter().map(move |d| (n.id.clone(), d)))
            .collect()
    }

    /// The URL of an order service that is up.
    pub fn order_url(&self) -> Option<String> {
        self.nodes
            .values()
            .filter(|n| n.role == role::ORDER && n.shown(self.now) == Shown::Up)
            .find_map(|n| n.http().map(str::to_string))
    }

    /// The ids the focused panel can select, in display order.
    pub fn selectable(&self, panel: Panel) -> Vec<String> {
        match panel {
            Panel::Nodes => self.node_ids(),
            Panel::Queues => self.queues.names(),
            Panel::Orders => self.order_rows().iter().map(|e| e.id().to_string()).collect(),
            Panel::Drivers => self.drivers().into_iter().map(|(_, d)| d.driver).collect(),
            Panel::Events => Vec::new(),
        }
    }

    /// The selected id of `panel`: the remembered one if it is still there,
    /// else the first row.
    pub fn selected(&self, panel: Panel) -> Option<String> {
        if panel == Panel::Orders {
            // Drawn every frame over thousands of orders: look the id up
            // rather than listing every id.
            let needle = self.ui.filter.to_lowercase();
            let kept = self
                .ui
                .selected
                .get(&panel)
                .filter(|id| self.orders.get(id).is_some_and(|e| e.matches(&needle)));
            return match kept {
                Some(id) => Some(id.clone()),
                None => self.order_rows().first().map(|e| e.id().to_string()),
            };
        }
        let ids = self.selectable(panel);
        match self.ui.selected.get(&panel) {
            Some(id) if ids.contains(id) => Some(id.clone()),
            _ => ids.into_iter().next(),
        }
    }
}

/// The order roles are listed in.
pub fn role_rank(role: &str) -> usize {
    crate::topology::Role::parse(role)
        .and_then(|r| crate::topology::Role::ALL.iter().position(|x| *x == r))
        .unwrap_or(usize::MAX)
}
