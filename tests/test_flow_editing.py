"""The flow editor's document operations (callrouting/flows/editing.py): the tree drawn from a document, and
adding, moving, copying and deleting subtrees. Pure: plain documents in, new documents out."""
import copy

import pytest

from callrouting.flows import editing
from callrouting.flows.editing import START, EditError


def two_level():
    """greeting -> main menu (1 outage -> europe/us submenu, 2 billing), out of hours voicemail via hours."""
    return {
        "schema": 1, "language": "en-GB", "start": "greeting",
        "nodes": {
            "greeting": {"kind": "message", "name": "Greeting", "text": "Hi.", "audio": None, "language": None,
                         "next": "hours"},
            "hours": {"kind": "hours", "name": "Hours", "calendar": 1, "in_hours": "main", "out_of_hours": "vm",
                      "holiday": None},
            "main": {"kind": "menu", "name": "Main", "prompt": {"text": "", "audio": None}, "prompt_alone": False,
                     "retries": 3, "language": None, "no_input": None,
                     "branches": [{"key": "1", "keyword": "outage", "next": "outage"},
                                  {"key": "2", "keyword": "billing", "next": "billing"}]},
            "outage": {"kind": "menu", "name": "Outage region", "prompt": {"text": "", "audio": None},
                       "prompt_alone": False, "retries": 3, "language": None, "no_input": "vm",
                       "branches": [{"key": "1", "keyword": "Europe", "next": "eu"}]},
            "eu": {"kind": "route", "name": "EU team", "targets": [{"type": "policy", "id": 3}],
                   "style": "sequential", "ring_timeout": 30, "repeat": 1, "hold_music": None, "no_answer": "vm"},
            "billing": {"kind": "route", "name": "Billing", "targets": [{"type": "user", "id": 9}],
                        "style": "sequential", "ring_timeout": 30, "repeat": 1, "hold_music": None,
                        "no_answer": None},
            "vm": {"kind": "voicemail", "name": "Voicemail", "greeting": {"text": "", "audio": None},
                   "max_length": 120, "transcription": True},
        },
    }


def test_the_tree_draws_each_node_once_and_links_later_branches():
    tree = editing.build_tree(two_level())
    assert tree.order == ["greeting", "hours", "main", "outage", "eu", "vm", "billing"]
    hours = tree.cards["hours"]
    assert [(b.label, b.card.node_id if b.card else b.goto) for b in hours.branches] == [
        ("in hours", "main"), ("out of hours", "vm"), ("holiday", None)]
    # vm was first drawn under the EU team's "nobody answered"; the hours' "out of hours" is then a go-to.
    assert hours.branches[1].goto == "vm" and tree.cards["vm"].position == ("eu", "no_answer")
    assert hours.branches[2].empty_means == "same as out of hours"
    assert [b.label for b in tree.cards["main"].branches] == ["1 outage", "2 billing", "no input"]
    assert [b.label for b in tree.cards["billing"].branches] == ["nobody answered"]
    assert tree.subtree("outage") == ["outage", "eu", "vm"]
    assert tree.unreachable == []


def test_unreachable_and_missing_nodes_are_drawn_apart():
    document = two_level()
    document["nodes"]["main"]["branches"][1]["next"] = "nowhere"
    tree = editing.build_tree(document)
    assert tree.cards["main"].branches[1].missing
    assert [card.node_id for card in tree.unreachable] == ["billing"]


def test_adding_on_an_occupied_branch_puts_the_new_node_in_between():
    original = two_level()
    document, node_id = editing.add_node(original, ("main", "branches[1].next"), "pin")
    assert node_id == "pin-1" and original == two_level()
    assert document["nodes"]["main"]["branches"][1]["next"] == "pin-1"
    assert document["nodes"]["pin-1"]["next"] == "billing" and document["nodes"]["pin-1"]["wrong"] is None
    # A terminal kind on an empty branch; the start can be replaced too.
    document, vm2 = editing.add_node(document, ("hours", "holiday"), "hangup")
    assert document["nodes"]["hours"]["holiday"] == vm2 == "hangup-1"
    document, first = editing.add_node(document, START, "caller_list")
    assert document["start"] == "caller-list-1" and document["nodes"][first]["not_listed"] == "greeting"
    with pytest.raises(EditError):
        editing.add_node(document, ("vm", "next"), "message")
    with pytest.raises(EditError):
        editing.add_node(document, START, "robot")


def test_moving_a_subtree_to_an_empty_branch():
    document = editing.move_subtree(two_level(), "outage", ("main", "branches[0].next"), ("hours", "holiday"))
    assert document["nodes"]["main"]["branches"][0]["next"] is None
    assert document["nodes"]["hours"]["holiday"] == "outage"
    with pytest.raises(EditError, match="empty branch"):
        editing.move_subtree(two_level(), "outage", ("main", "branches[0].next"), ("hours", "in_hours"))
    with pytest.raises(EditError, match="its own branches"):
        editing.move_subtree(two_level(), "main", ("hours", "in_hours"), ("billing", "no_answer"))
    with pytest.raises(EditError, match="changed"):
        editing.move_subtree(two_level(), "billing", ("main", "branches[0].next"), ("hours", "holiday"))


def test_copying_a_subtree_gives_new_ids_and_keeps_outside_links():
    original = two_level()
    document, copy_id = editing.copy_subtree(original, "outage", ("hours", "holiday"))
    assert copy_id == "menu-1" and document["nodes"]["hours"]["holiday"] == "menu-1"
    copied = document["nodes"]["menu-1"]
    assert copied["name"] == "Outage region (copy)"
    # Inside the subtree the copies lead to copies; the subtree's nodes are eu and vm.
    assert copied["branches"][0]["next"] == "route-1" and copied["no_input"] == "voicemail-1"
    assert document["nodes"]["route-1"]["no_answer"] == "voicemail-1"
    assert document["nodes"]["outage"] == original["nodes"]["outage"]
    assert len(document["nodes"]) == len(original["nodes"]) + 3


def test_copying_keeps_links_leaving_the_subtree():
    document, copy_id = editing.copy_subtree(two_level(), "billing", ("hours", "holiday"))
    assert document["nodes"][copy_id]["no_answer"] is None
    document, copy_id = editing.copy_subtree(two_level(), "eu", ("billing", "no_answer"))
    # eu's vm is in eu's subtree (drawn under it), so it is copied too.
    assert document["nodes"][copy_id]["no_answer"] != "vm"
    document2 = copy.deepcopy(two_level())
    document2["nodes"]["eu"]["no_answer"] = "main"  # a loop back up: not in the subtree, kept as a link
    document2, copy_id = editing.copy_subtree(document2, "eu", ("billing", "no_answer"))
    assert document2["nodes"][copy_id]["no_answer"] == "main"


def test_deleting_a_subtree_empties_every_branch_into_it():
    removed, cut = editing.deletion(two_level(), "outage")
    assert removed == ["outage", "eu", "vm"]
    assert [label for _, label in cut] == ["Hours → out of hours"]
    document = editing.delete_subtree(two_level(), "outage")
    assert set(document["nodes"]) == {"greeting", "hours", "main", "billing"}
    assert document["nodes"]["hours"]["out_of_hours"] is None
    assert document["nodes"]["main"]["branches"][0]["next"] is None
    assert editing.delete_subtree(two_level(), "greeting")["start"] is None


def test_positions_round_trip_through_form_values():
    for position in [START, ("main", "branches[1].next"), ("hours", "out_of_hours")]:
        assert editing.parse_position(editing.position_value(position)) == position
    for bad in ["", "main", "main:../x", "main:branches.x", "main:branches[1]"]:
        with pytest.raises(EditError):
            editing.parse_position(bad)


def test_a_draft_that_is_not_a_flow_still_draws():
    """An API import may store anything as the draft: the editor draws what it can, validation says the rest."""
    tree = editing.build_tree({"nodes": {"a": "not a node", "b": {"kind": "hangup"}}, "start": ["x"]})
    assert tree.root.card is None and tree.order == ["b"]
    assert [c.node_id for c in editing.build_tree({"nodes": {"b": {"kind": "hangup"}}}).unreachable] == ["b"]
    assert editing.build_tree([]).order == [] and editing.build_tree({"nodes": []}).order == []
