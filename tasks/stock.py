"""Stock task: a count (absolute) or an adjustment (relative) of one article in one warehouse."""
from tasks.base import delivery_task

adjust = delivery_task("stock.adjust")
