/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lru: two circular doubly-linked lists with sentinels, one of evictable
 * nodes (coldest first) and one of pinned nodes. Pinned nodes live on
 * their own list so that popping the coldest never walks past them.
 */
#include "flushline/lru.h"

static void unlink_node(fl_lru_node_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

/* Appends node before sentinel s: the newest end of that list. */
static void link_tail(fl_lru_node_t *s, fl_lru_node_t *node)
{
    node->prev = s->prev;
    node->next = s;
    s->prev->next = node;
    s->prev = node;
}

void fl_lru_init(fl_lru_t *lru)
{
    lru->cold.prev = lru->cold.next = &lru->cold;
    lru->pinned.prev = lru->pinned.next = &lru->pinned;
    lru->bytes = lru->count = lru->npinned = 0;
}

void fl_lru_add(fl_lru_t *lru, fl_lru_node_t *node, size_t bytes)
{
    node->bytes = bytes;
    node->pins = 0;
    node->linked = true;
    link_tail(&lru->cold, node);
    lru->bytes += bytes;
    lru->count++;
}

void fl_lru_remove(fl_lru_t *lru, fl_lru_node_t *node)
{
    if (!node->linked)
        return;
    unlink_node(node);
    if (node->pins)
        lru->npinned--;
    node->pins = 0;
    node->linked = false;
    lru->bytes -= node->bytes;
    lru->count--;
}

void fl_lru_touch(fl_lru_t *lru, fl_lru_node_t *node)
{
    if (!node->linked || node->pins)
        return;
    unlink_node(node);
    link_tail(&lru->cold, node);
}

void fl_lru_resize(fl_lru_t *lru, fl_lru_node_t *node, size_t bytes)
{
    if (node->linked)
        lru->bytes = lru->bytes - node->bytes + bytes;
    node->bytes = bytes;
}

void fl_lru_pin(fl_lru_t *lru, fl_lru_node_t *node)
{
    if (!node->linked)
        return;
    if (node->pins++ == 0) {
        unlink_node(node);
        link_tail(&lru->pinned, node);
        lru->npinned++;
    }
}

void fl_lru_unpin(fl_lru_t *lru, fl_lru_node_t *node)
{
    if (!node->linked || node->pins == 0)
        return;
    if (--node->pins == 0) {
        unlink_node(node);
        link_tail(&lru->cold, node);
        lru->npinned--;
    }
}

bool fl_lru_pinned(const fl_lru_node_t *node)
{
    return node->pins > 0;
}

bool fl_lru_linked(const fl_lru_node_t *node)
{
    return node->linked;
}

fl_lru_node_t *fl_lru_coldest(const fl_lru_t *lru)
{
    return lru->cold.next == &lru->cold ? NULL : lru->cold.next;
}

fl_lru_node_t *fl_lru_pop(fl_lru_t *lru)
{
    fl_lru_node_t *node = fl_lru_coldest(lru);
    if (node)
        fl_lru_remove(lru, node);
    return node;
}

size_t fl_lru_bytes(const fl_lru_t *lru)
{
    return lru->bytes;
}

size_t fl_lru_count(const fl_lru_t *lru)
{
    return lru->count;
}

size_t fl_lru_pinned_count(const fl_lru_t *lru)
{
    return lru->npinned;
}
