-- +goose Up

-- Address keys fold ASCII case only (parse.AddressKey): Unicode case
-- mapping made different mailboxes one ("\u212Aate", with a Kelvin sign,
-- keyed as "kate"). Only addresses holding a non-ASCII character can have
-- a key that changes; ASCII keys are already right. Finer keys cannot
-- collide where coarser ones did not, so no unique index is violated.
UPDATE suppressions SET address_key = translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    WHERE octet_length(address) <> char_length(address)
        AND address_key <> translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
UPDATE recipients SET address_key = translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    WHERE octet_length(address) <> char_length(address)
        AND address_key <> translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
-- One pass over the events (a sequential scan, once).
UPDATE events SET address_key = translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    WHERE octet_length(address) <> char_length(address)
        AND address_key <> translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
-- Counted soft failures hold no address: they follow their event.
UPDATE soft_failures s SET address_key = e.address_key
    FROM events e
    WHERE e.id = s.event_id AND octet_length(e.address) <> char_length(e.address)
        AND e.address_key <> s.address_key;

-- +goose Down
-- Nothing to undo: the old keys folded more, and bounced before this
-- migration recomputes none of them.
