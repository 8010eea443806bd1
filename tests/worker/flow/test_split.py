"""A batch refused whole for its content is split in halves until the refused items stand alone: one bad
item among 500 costs 19 requests and only it is refused; a failure that is not about content stops the
split, and the parts not yet sent share it unsent."""
from __future__ import annotations

from worker.errors import PermanentError, TransientError
from worker.flow.split import send_in_halves


class Destination:
    """Refuses a whole request (400) when any item in it is bad; fails with 503 from request ``down_at``."""

    def __init__(self, bad=(), down_at=None):
        self.bad, self.down_at, self.requests = set(bad), down_at, []

    def send(self, items):
        self.requests.append(list(items))
        if self.down_at is not None and len(self.requests) >= self.down_at:
            raise TransientError("down", status=503)
        refused = [i for i in items if i in self.bad]
        if refused:
            raise PermanentError("One or more validation errors occurred.", status=400)
        return {"applied": len(items)}


def delivered(parts):
    return [i for p in parts if p.delivered for i in p.items]


def test_one_bad_item_among_500_is_isolated():
    api = Destination(bad={137})
    parts = send_in_halves(range(500), api.send)
    refused = [p for p in parts if not p.delivered]
    assert [p.items for p in refused] == [(137,)] and refused[0].error.status == 400
    assert sorted(delivered(parts)) == [i for i in range(500) if i != 137]
    assert len(api.requests) == 19  # 1 + 2 x ceil(log2 500)
    assert [i for p in parts for i in p.items] == list(range(500))  # the parts come out in order


def test_several_bad_items():
    api = Destination(bad={0, 250, 499})
    parts = send_in_halves(range(500), api.send)
    assert sorted(i for p in parts if not p.delivered for i in p.items) == [0, 250, 499]
    assert len(delivered(parts)) == 497


def test_a_good_batch_is_one_request():
    api = Destination()
    parts = send_in_halves(range(500), api.send)
    assert len(parts) == 1 and parts[0].reply == {"applied": 500} and len(api.requests) == 1


def test_a_failure_that_is_not_about_content_stops_the_split():
    api = Destination(bad={3}, down_at=3)  # the first half's first half fails with a 503
    parts = send_in_halves(range(8), api.send)
    assert len(api.requests) == 3
    failed = [p for p in parts if not p.delivered]
    assert all(isinstance(p.error, TransientError) for p in failed)
    assert [(p.items, p.sent) for p in failed] == [((0, 1), True), ((2, 3), False), ((4, 5, 6, 7), False)]


def test_a_refusal_not_about_content_is_not_split():
    def refuse(items):
        raise PermanentError("Invalid auth Id or signature", status=401)

    parts = send_in_halves(range(10), refuse)
    assert len(parts) == 1 and parts[0].error.status == 401 and parts[0].sent
