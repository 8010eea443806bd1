"""Order task: lock or release outgoing order lines while the warehouse works on them."""
from tasks.base import delivery_task

lock_lines = delivery_task("order.lock_lines")
