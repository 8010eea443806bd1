"""Receipt task: goods received at the warehouse."""
from tasks.base import delivery_task

create = delivery_task("receipt.create")
