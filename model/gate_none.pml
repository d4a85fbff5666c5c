/*
 * GATE_NONE (src/gate_none.c): no gate.  The updater publishes whenever it
 * likes, so a start and its end may see different memslots.
 */
inline gate_invalidate_begin() { skip }

inline gate_invalidate_end() { wake = false }

inline gate_update_begin(change) { skip }

inline gate_update_end() { skip }
