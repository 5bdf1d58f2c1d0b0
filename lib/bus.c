/*
 * bus.c: the public bus functions, dispatching through the backend's table
 * of operations. Only the spool backend exists today; a bus location of the
 * form "nats://..." is where a second one will be chosen.
 */
#include "config.h"

#include "internal.h"

const char *
ev_version(void)
{
	return PACKAGE_VERSION;
}

int
ev_bus_open(const struct ev_bus_opts *opts, struct ev_bus **bus,
    struct ev_err *err)
{
	return ev_spool_backend.open(opts, bus, err);
}

const char *
ev_bus_location(const struct ev_bus *bus)
{
	return bus->location;
}

size_t
ev_bus_payload_max(const struct ev_bus *bus)
{
	return bus->payload_max;
}

int
ev_bus_maintenance_due(struct ev_bus *bus)
{
	return bus->ops->maintenance_due(bus);
}

int
ev_bus_maintain(struct ev_bus *bus, struct ev_err *err)
{
	return bus->ops->maintain(bus, err);
}

void
ev_bus_close(struct ev_bus *bus)
{
	if (bus != NULL)
		bus->ops->close(bus);
}

int
ev_batch_new(struct ev_bus *bus, struct ev_batch **batch, struct ev_err *err)
{
	return bus->ops->batch_new(bus, batch, err);
}

int
ev_batch_add(struct ev_batch *batch, const struct ev_event *ev, char *id,
    int *dup, struct ev_err *err)
{
	return batch->ops->batch_add(batch, ev, id, dup, err);
}

int
ev_batch_commit(struct ev_batch *batch, struct ev_err *err)
{
	return batch->ops->batch_commit(batch, err);
}

void
ev_batch_free(struct ev_batch *batch)
{
	if (batch != NULL)
		batch->ops->batch_free(batch);
}

int
ev_sub_open(struct ev_bus *bus, const struct ev_sub_opts *opts,
    struct ev_sub **sub, struct ev_err *err)
{
	return bus->ops->sub_open(bus, opts, sub, err);
}

void
ev_sub_close(struct ev_sub *sub)
{
	if (sub != NULL)
		sub->ops->sub_close(sub);
}

int
ev_sub_fd(const struct ev_sub *sub)
{
	return sub->ops->sub_fd(sub);
}

int
ev_sub_refresh(struct ev_sub *sub, struct ev_err *err)
{
	return sub->ops->sub_refresh(sub, err);
}

int
ev_sub_take(struct ev_sub *sub, struct ev_delivery *d, int64_t *wait_ms,
    struct ev_err *err)
{
	return sub->ops->sub_take(sub, d, wait_ms, err);
}

int
ev_sub_ack(struct ev_sub *sub, struct ev_delivery *d, struct ev_err *err)
{
	return sub->ops->sub_ack(sub, d, err);
}

int
ev_sub_retry(struct ev_sub *sub, struct ev_delivery *d, int64_t delay_ms,
    const struct ev_failure *why, struct ev_err *err)
{
	return sub->ops->sub_retry(sub, d, delay_ms, why, err);
}

int
ev_sub_dead(struct ev_sub *sub, struct ev_delivery *d,
    const struct ev_failure *why, struct ev_err *err)
{
	return sub->ops->sub_dead(sub, d, why, err);
}

int
ev_sub_release(struct ev_sub *sub, struct ev_delivery *d, struct ev_err *err)
{
	return sub->ops->sub_release(sub, d, err);
}

const char *
ev_sub_name(const struct ev_sub *sub)
{
	return sub->name;
}
