"""What the flow editor does to a flow document (a dict, schema 1): pure operations, no database.

A document is a graph of nodes joined by branches (a node's fields that hold another node's id). The editor shows
it as a tree: depth first from the start, each node drawn once where it is first reached; a later branch to a
node already drawn is a "go to <name>" link. The nodes drawn under a node are its *subtree*: what moving, copying
and deleting that node carries with it.

A *position* names one branch: (parent node id, slot), where slot is a field of the parent ("next",
"no_input", "out_of_hours", ...) or "branches[<i>].next" for a menu's i-th key (the field paths of
flows/document.py's branches and errors); the start of the flow is (None, "start").
Every operation returns a new document and never changes the one it was given.
"""
import copy
import re
from dataclasses import dataclass, field

from . import document as flow_document

START = (None, "start")

KINDS = {
    "message": "Message",
    "menu": "Menu",
    "hours": "Support hours",
    "route": "Route call",
    "voicemail": "Voicemail",
    "pin": "PIN",
    "caller_list": "Caller list",
    "incident": "Create incident",
    "hangup": "Hang up",
}

# What an empty branch means where the document allows one (contract: "null where allowed = documented default").
EMPTY_MEANS = {
    ("menu", "no_input"): "same as the first key",
    ("hours", "holiday"): "same as out of hours",
    ("route", "no_answer"): "“nobody is available”, then hang up",
}

# The branch a node inserted on an occupied branch continues with: the old target moves there.
MAIN_SLOT = {"message": "next", "hours": "in_hours", "route": "no_answer", "pin": "next",
             "caller_list": "not_listed", "incident": "next"}


def new_node(kind, name=None):
    """A node of KIND with the settings a new node starts with, all branches empty."""
    nodes = {
        "message": {"text": "", "audio": None, "language": None, "next": None},
        "menu": {"prompt": {"text": "", "audio": None}, "prompt_alone": False, "retries": 3, "language": None,
                 "branches": [], "no_input": None},
        "hours": {"calendar": None, "in_hours": None, "out_of_hours": None, "holiday": None},
        "route": {"targets": [], "style": "sequential", "ring_timeout": 30, "repeat": 1, "hold_music": None,
                  "no_answer": None},
        "voicemail": {"greeting": {"text": "", "audio": None}, "max_length": 120, "transcription": True},
        "pin": {"prompt": {"text": "Please enter your PIN.", "audio": None}, "codes": [], "retries": 3,
                "next": None, "wrong": None},
        "caller_list": {"entries": [], "listed": None, "not_listed": None},
        "incident": {"alert_source": None, "priority": "high", "policy": None, "accept_when_answered": True,
                     "next": None},
        "hangup": {"text": "", "audio": None},
    }
    if kind not in nodes:
        raise EditError(f"Unknown kind of node: {kind}.")
    return {"kind": kind, "name": name or KINDS[kind], **nodes[kind]}


class EditError(ValueError):
    """An edit that cannot be made (the message says why, for the admin)."""


def empty_document(language="en-GB"):
    return {"schema": 1, "language": language, "start": None, "nodes": {}}


# --- Reading branches ---------------------------------------------------------------------------------------


def slots(node):
    """[(slot, label, target id or None)] of NODE's branches, in the order the editor shows them."""
    return [(branch.field, branch.label, branch.target) for branch in flow_document.branches(node)]


def get_target(document, position):
    parent, slot = position
    if parent is None:
        return document.get("start")
    node = document["nodes"].get(parent)
    if node is None:
        raise EditError("That branch is no longer in the flow.")
    for name, _, target in slots(node):
        if name == slot:
            return target
    raise EditError("That branch is no longer in the flow.")


def _set_target(document, position, target):
    """Point POSITION at TARGET, in place."""
    get_target(document, position)  # refuses a position that does not exist
    parent, slot = position
    if parent is None:
        document["start"] = target
    elif slot.startswith("branches["):
        document["nodes"][parent]["branches"][int(slot[len("branches["):slot.index("]")])]["next"] = target
    else:
        document["nodes"][parent][slot] = target


def parse_position(value):
    """A position from its form value "<parent>:<slot>" (":start" for the start)."""
    parent, _, slot = (value or "").partition(":")
    if not slot or not re.fullmatch(r"[a-z_]+|branches\[\d{1,3}\]\.next", slot):
        raise EditError("Choose a branch.")
    return (parent or None, slot)


def position_value(position):
    parent, slot = position
    return f"{parent or ''}:{slot}"


# --- The tree -------------------------------------------------------------------------------------------------


@dataclass
class Branch:
    """One branch as drawn: its label and what hangs from it (a card, a "go to", or nothing)."""

    position: tuple
    label: str
    target: str | None
    card: "Card | None" = None
    goto: str | None = None  # id of a node drawn elsewhere
    missing: bool = False  # points to an id that is not in the document
    empty_means: str = ""


@dataclass
class Card:
    node_id: str
    node: dict
    position: tuple  # where it is drawn
    depth: int
    branches: list = field(default_factory=list)

    @property
    def kind(self):
        return self.node.get("kind")

    @property
    def kind_label(self):
        return KINDS.get(self.kind, self.kind)

    @property
    def name(self):
        return self.node.get("name") or self.node_id


@dataclass
class Tree:
    root: Branch
    unreachable: list  # [Card] of nodes not reachable from the start, each with its own subtree
    order: list  # node ids in drawing order
    cards: dict  # node id -> Card

    def subtree(self, node_id):
        """Ids of NODE_ID and of every node drawn under it."""
        found, stack = [], [self.cards[node_id]]
        while stack:
            card = stack.pop()
            found.append(card.node_id)
            stack.extend(branch.card for branch in reversed(card.branches) if branch.card)
        return found

    def positions(self):
        """[(position, label)] of every branch drawn, in drawing order, the start first."""
        found = [(START, "Start of the call")]
        for node_id in self.order:
            card = self.cards[node_id]
            found += [(branch.position, f"{card.name} → {branch.label}") for branch in card.branches]
        return found


def build_tree(document):
    """The document drawn as a tree (see the module's docstring)."""
    # A draft imported through the API may hold anything: what is not a node is left out (validation names it).
    nodes = document.get("nodes") if isinstance(document, dict) else None
    nodes = {key: node for key, node in nodes.items() if isinstance(node, dict)} if isinstance(nodes, dict) else {}
    cards, order = {}, []

    def branch_for(position, label, target, depth, empty_means=""):
        branch = Branch(position=position, label=label, target=target, empty_means=empty_means)
        if target is None:
            return branch
        if target not in nodes:
            branch.missing = True
        elif target in cards:
            branch.goto = target
        else:
            branch.card = draw(target, position, depth)
        return branch

    def draw(node_id, position, depth):
        # Iterative over the branches of one node, recursive in depth; a document is at most a few hundred nodes,
        # far below Python's recursion limit (the API bounds the document's size).
        node = nodes[node_id]
        card = Card(node_id=node_id, node=node, position=position, depth=depth)
        cards[node_id] = card
        order.append(node_id)
        for slot, label, target in slots(node):
            means = EMPTY_MEANS.get((node.get("kind"), slot), "")
            card.branches.append(branch_for((node_id, slot), label, target, depth + 1, means))
        return card

    start = document.get("start") if isinstance(document, dict) else None
    root = branch_for(START, "Start of the call", start if isinstance(start, str) else None, 0)
    unreachable = []
    for node_id in nodes:
        if node_id not in cards:
            unreachable.append(draw(node_id, None, 0))
    return Tree(root=root, unreachable=unreachable, order=order, cards=cards)


# --- Edits ----------------------------------------------------------------------------------------------------


def new_id(document, kind):
    """An id for a new node of KIND that the document does not use yet: "<kind>-<n>"."""
    prefix = kind.replace("_", "-")
    taken = set(document.get("nodes") or {})
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


def add_node(document, position, kind, name=None):
    """(document, new id): a new node of KIND on POSITION. A branch that led somewhere keeps leading there: the new
    node is put in between (the old target hangs from the new node's main branch), except for terminal kinds."""
    document = copy.deepcopy(document)
    old = get_target(document, position)
    node_id = new_id(document, kind)
    node = new_node(kind, name)
    if old is not None and kind in MAIN_SLOT:
        node[MAIN_SLOT[kind]] = old
    document.setdefault("nodes", {})[node_id] = node
    _set_target(document, position, node_id)
    return document, node_id


def move_subtree(document, node_id, source, destination):
    """Move the node drawn at SOURCE, with its subtree, to the empty branch DESTINATION; SOURCE becomes empty."""
    document = copy.deepcopy(document)
    tree = build_tree(document)
    if get_target(document, source) != node_id or node_id not in tree.cards:
        raise EditError("The flow changed: that node is no longer on that branch.")
    if get_target(document, destination) is not None:
        raise EditError("Choose an empty branch to move to (or delete what is there first).")
    if destination[0] in tree.subtree(node_id):
        raise EditError("A node cannot move onto one of its own branches.")
    _set_target(document, source, None)
    _set_target(document, destination, node_id)
    return document


def copy_subtree(document, node_id, destination):
    """(document, id of the copy): NODE_ID and its subtree copied under new ids onto the empty branch DESTINATION.
    Branches inside the subtree lead to the copies; branches leaving it lead where the originals lead."""
    document = copy.deepcopy(document)
    tree = build_tree(document)
    if node_id not in tree.cards:
        raise EditError("That node is no longer in the flow.")
    if get_target(document, destination) is not None:
        raise EditError("Choose an empty branch to copy to (or delete what is there first).")
    originals = tree.subtree(node_id)
    renamed = {}
    for original in originals:
        renamed[original] = new_id({"nodes": {**document["nodes"], **dict.fromkeys(renamed.values())}},
                                   document["nodes"][original]["kind"])
    for original in originals:
        node = copy.deepcopy(document["nodes"][original])
        if original == node_id:
            node["name"] = f"{node.get('name') or original} (copy)"
        document["nodes"][renamed[original]] = node
        for slot, _, target in slots(node):
            if target in renamed:
                _set_target(document, (renamed[original], slot), renamed[target])
    _set_target(document, destination, renamed[node_id])
    return document, renamed[node_id]


def deletion(document, node_id):
    """(ids removed, [(position, label)] of branches elsewhere that would lose their target) if NODE_ID is deleted."""
    tree = build_tree(document)
    if node_id not in tree.cards:
        raise EditError("That node is no longer in the flow.")
    removed = tree.subtree(node_id)
    cut = []
    for position, label in tree.positions():
        if position[0] in removed:
            continue
        target = get_target(document, position)
        if target in removed and not (target == node_id and position == tree.cards[node_id].position):
            cut.append((position, label))
    return removed, cut


def delete_subtree(document, node_id):
    """NODE_ID and its subtree removed; every branch that led into them is left empty."""
    removed, _ = deletion(document, node_id)
    document = copy.deepcopy(document)
    for gone in removed:
        del document["nodes"][gone]
    if document.get("start") in removed:
        document["start"] = None
    for other, node in document["nodes"].items():
        for slot, _, target in slots(node):
            if target in removed:
                _set_target(document, (other, slot), None)
    return document


def replace_node(document, node_id, node):
    """NODE_ID's settings replaced by NODE (a node dict of the same kind, branches included)."""
    document = copy.deepcopy(document)
    if node_id not in document.get("nodes", {}):
        raise EditError("That node is no longer in the flow.")
    document["nodes"][node_id] = node
    return document
