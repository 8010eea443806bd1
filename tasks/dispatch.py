"""Dispatch tasks: a shipment packed (create, vendor create), changed, published or withdrawn."""
from tasks.base import delivery_task

create = delivery_task("dispatch.create")
update = delivery_task("dispatch.update")
publish = delivery_task("dispatch.publish")
delete = delivery_task("dispatch.delete")
vendor_create = delivery_task("vendor_dispatch.create")
