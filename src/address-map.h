/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "address.h"

/* A hash map from Address to a fixed-size entry that begins with its Address, for tables that
 * may hold a million addresses under a flood.
 *
 * Entries are dense: ids 0 .. size-1 are exactly the live entries, so iteration is a plain loop
 * and memory shrinks again after a flood. Removing an entry moves the last one into the hole and
 * reports it through on_move, so owners may link entries by id (lists, heaps) but must not keep
 * entry pointers across a put or a remove. Entries live in fixed-size chunks, so growing never
 * copies them.
 *
 * The index is open addressing with linear probing and backward-shift deletion (no tombstones):
 * 8 bytes per bucket, at most 3/4 full. It relies on address_hash() being keyed with a secret
 * (SipHash), so that addresses an attacker picks cannot be aimed at one cluster of buckets.
 *
 * Nothing here logs. */

#define ADDRESS_MAP_NONE UINT32_MAX
#define ADDRESS_MAP_SIZE_MAX (UINT32_C(1) << 30)

typedef struct AddressMap AddressMap;

/* The entry now at id to was at id from. */
typedef void (*AddressMapMove)(void *entry, uint32_t from, uint32_t to, void *userdata);

/* entry_size includes the leading Address. on_move may be NULL if ids are not kept anywhere. */
int address_map_new(size_t entry_size, AddressMapMove on_move, void *userdata, AddressMap **ret);
AddressMap *address_map_free(AddressMap *m);

/* The id of a's entry, or ADDRESS_MAP_NONE. */
uint32_t address_map_find(const AddressMap *m, const Address *a);

/* The entry with id < address_map_size(); valid until the next put or remove. */
void *address_map_entry(const AddressMap *m, uint32_t id);

/* Finds or adds a's entry. Returns 1 if added (the entry is zeroed but for its address), 0 if it
 * existed; -ENOMEM, or -E2BIG beyond ADDRESS_MAP_SIZE_MAX. Never calls on_move. */
int address_map_put(AddressMap *m, const Address *a, uint32_t *ret_id);

/* Removes entry id; the last entry takes its id (on_move is called unless id was the last). */
void address_map_remove(AddressMap *m, uint32_t id);

size_t address_map_size(const AddressMap *m);
/* Bytes allocated by the map: entries, index and bookkeeping (without malloc's own overhead). */
size_t address_map_memory_usage(const AddressMap *m);
