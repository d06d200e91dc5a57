"""Template mining with drain3's Drain, its state kept as plain JSON.

drain3's own persistence pickles the miner with jsonpickle, whose decoding
can run code named in the file; a parser state here is plain JSON instead
(settings, each cluster's id, template tokens and size, and the prefix tree)
and the miner is rebuilt from it, so a resumed parser keeps every event id
and numbers new templates after the old ones.

Similarity: Drain counts a wildcard in a template as a mismatch, so a
message whose variable parts were masked (``<*> <*> <*> done``) may not
match its own template; ``similarity="constants"`` (the default) compares
only the template's constant tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from drain3.drain import Drain, LogCluster, Node

from ..errors import InputError
from .masking import PARAM

STATE_FORMAT = "seqrnn-parser"
STATE_VERSION = 1
MAX_DEPTH = 100  # drain's prefix tree (drain3's default 4): deeper trees overflow Python's nesting limits


@dataclass
class MinerSettings:
    sim_th: float = 0.5
    depth: int = 4
    max_children: int = 100
    similarity: str = "constants"  # or "drain": wildcards count as mismatches
    strict_words: bool = True  # two different plain words never match...
    word_values: int = 5  # ...until this many templates differ only in one word: then they are one

    def check(self) -> None:
        if not 0 < self.sim_th <= 1:
            raise InputError("sim_th must be in (0, 1]", params="sim_th")
        if not 3 <= self.depth <= MAX_DEPTH:  # the state is saved as nested JSON, two levels a tree level
            raise InputError(f"depth must be from 3 to {MAX_DEPTH}", params="depth")
        if self.max_children < 2:
            raise InputError("max_children must be >= 2", params="max_children")
        if self.word_values < 2:
            raise InputError("word_values must be >= 2", params="word_values")
        if self.similarity not in ("constants", "drain"):
            raise InputError("similarity must be constants or drain", params="similarity")


_PUNCT = "\"'()[]{}<>,.;:!?"
_HASH_MOD = (1 << 61) - 1  # a prime: the sibling keys' polynomial hashes (Miner._keys)
_HASH_BASE = 1_000_003


_WORDS: dict[str, bool] = {}


def _is_word(token: str) -> bool:
    """A plain word or name, maybe in quotes, brackets or before a comma (``"GET``, ``Resumed``,
    ``(spawning).``, ``mapred.task.id``): letters, joined by ``.``, ``_``, ``-`` or ``:``, no digit."""
    known = _WORDS.get(token)
    if known is None:
        if len(_WORDS) > 100_000:
            _WORDS.clear()
        core = token.strip(_PUNCT)
        known = _WORDS[token] = bool(core) and core[0].isalpha() and core.replace(".", "").replace(
            "_", "").replace("-", "").replace(":", "").isalpha()
    return known


class _LeafIndex:
    """The clusters of one leaf of the prefix tree: by the constant token at each position of their template
    (``constants[(position, token)]``), by the positions where it has a wildcard or a token that is no word
    (``others[position]``), and by their number of constant tokens (``sizes[n]``)."""

    __slots__ = ("ids", "indexed", "constants", "others", "sizes", "order")

    def __init__(self, ids: list):
        self.ids, self.indexed, self.constants, self.others, self.sizes, self.order = ids, 0, {}, {}, {}, {}

    def add(self, cluster_id: int, template) -> None:
        self._each(cluster_id, template, set.add)

    def remove(self, cluster_id: int, template) -> None:
        self._each(cluster_id, template, set.discard)

    def _each(self, cluster_id: int, template, op) -> None:
        n = 0
        for p, t in enumerate(template):
            if t != PARAM:
                n += 1
                op(self.constants.setdefault((p, t), set()), cluster_id)
            if t == PARAM or not _is_word(t):
                op(self.others.setdefault(p, set()), cluster_id)
        op(self.sizes.setdefault(n, set()), cluster_id)

    def candidates(self, tokens, sim_th: float, strict: bool) -> set:
        """The clusters that may reach ``sim_th`` (see :meth:`_ConstantsDrain.get_seq_distance`): a template
        repeats at least one of the line's tokens, or has so few constants that the positions not looked
        at could make its share (a template of wildcards alone: a line of wildcards alone); with ``strict``,
        no constant word of it differs from the line's word at the same position."""
        budget = max(1, len(self.order) // 4)
        fits = None
        if strict:  # the templates whose word at the line's most telling word position is no other word
            best = None
            for p, t in enumerate(tokens):
                if t != PARAM and _is_word(t):
                    size = len(self.constants.get((p, t), ())) + len(self.others.get(p, ()))
                    if best is None or size < best[0]:
                        best = (size, p, t)
            if best is not None:
                size, p, t = best
                fits = self.constants.get((p, t), set()) | self.others.get(p, set())
                if size <= budget:
                    return fits
        listed = sorted((len(self.constants[(p, t)]), p) for p, t in enumerate(tokens)
                        if t != PARAM and (p, t) in self.constants)
        found: set = set()
        spent, unlisted = 0, 0
        for size, p in listed:  # the rarest tokens' templates; a token most templates share is not listed
            if spent + size <= budget:
                found |= self.constants[(p, tokens[p])]
                spent += size
            else:
                unlisted += 1
        for n, ids in self.sizes.items():
            # a template of n constants that repeats no listed token matches at most `unlisted` of them
            if (n == 0 and all(t == PARAM for t in tokens)) or (n and n * sim_th <= unlisted + 1e-9):
                found |= ids
        return found if fits is None else found & fits


class _ConstantsDrain(Drain):
    """Drain whose similarity is the share of a template's constant tokens that the message repeats.

    A large leaf is searched through an index of its templates (:class:`_LeafIndex`): a template that
    repeats none of the message's tokens, or (``strict_words``) whose constant word differs from the
    message's word at the same position, cannot reach the threshold, so only the others are compared, in
    the leaf's order, and the match is drain's. A log whose first words are values (user names), or whose
    lines share little beyond drain's prefix, put thousands of templates in one leaf, and comparing each
    line with all of them made parsing take the square of the lines.
    Clusters are never evicted here, so a new cluster is appended to its leaf (drain3 copies the leaf's
    list to drop evicted ones, again in the time of the leaf)."""

    INDEX_FROM = 32  # clusters in a leaf before it is searched through its index

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._leaves: dict[int, _LeafIndex] = {}  # id(leaf's list) -> its index
        self._leaf_of: dict[int, _LeafIndex] = {}  # cluster id -> the index that holds it

    def retemplate(self, cluster: LogCluster, tokens: tuple) -> None:
        """Give ``cluster`` the template ``tokens`` (its own, with wildcards in more places)."""
        leaf = self._leaf_of.get(cluster.cluster_id)
        if leaf is not None:
            leaf.remove(cluster.cluster_id, cluster.log_template_tokens)
            leaf.add(cluster.cluster_id, tokens)
        cluster.log_template_tokens = tokens

    def fast_match(self, cluster_ids, tokens, sim_th, include_params):
        if len(cluster_ids) < self.INDEX_FROM or include_params:
            return super().fast_match(cluster_ids, tokens, sim_th, include_params)
        leaf = self._leaves.get(id(cluster_ids))
        if leaf is None or leaf.ids is not cluster_ids:
            leaf = self._leaves[id(cluster_ids)] = _LeafIndex(cluster_ids)
        for i, cid in enumerate(cluster_ids[leaf.indexed:], leaf.indexed):
            cluster = self.id_to_cluster.get(cid)
            if cluster is not None and cid not in leaf.order:
                leaf.add(cid, cluster.log_template_tokens)
                leaf.order[cid] = i
                self._leaf_of[cid] = leaf
        leaf.indexed = len(cluster_ids)
        candidates = sorted(leaf.candidates(tokens, sim_th, self.strict_words), key=leaf.order.__getitem__)
        return super().fast_match(candidates, tokens, sim_th, include_params)

    def add_seq_to_prefix_tree(self, root_node, cluster: LogCluster):
        """drain3's, appending the cluster to its leaf's list (nothing is evicted to drop)."""
        tokens = cluster.log_template_tokens
        count = len(tokens)
        node = root_node.key_to_child_node.get(str(count))
        if node is None:
            node = root_node.key_to_child_node[str(count)] = Node()
        if count == 0:
            node.cluster_ids = [cluster.cluster_id]
            return
        depth = 1
        for token in tokens:
            if depth >= self.max_node_depth or depth >= count:
                node.cluster_ids.append(cluster.cluster_id)
                return
            children = node.key_to_child_node
            if token in children:
                node = children[token]
            elif self.parametrize_numeric_tokens and self.has_numbers(token):
                node = children.setdefault(self.param_str, Node())
            elif self.param_str in children:
                if len(children) < self.max_children:
                    node = children[token] = Node()
                else:
                    node = children[self.param_str]
            elif len(children) + 1 < self.max_children:
                node = children[token] = Node()
            elif len(children) + 1 == self.max_children:
                node = children[self.param_str] = Node()
            else:
                node = children[self.param_str]
            depth += 1

    def get_seq_distance(self, seq1, seq2, include_params: bool):
        constants = same = 0
        strict = self.strict_words
        for t1, t2 in zip(seq1, seq2):
            if t1 == PARAM:
                continue
            constants += 1
            if t1 == t2:
                same += 1
            elif strict and t2 != PARAM and _is_word(t1) and _is_word(t2):
                return 0.0, 0
        n_params = len(seq1) - constants
        if include_params:
            return (same + n_params) / len(seq1) if len(seq1) else 1.0, n_params
        if constants:
            return same / constants, n_params
        # A template of wildcards alone takes messages of wildcards alone, not any message of its length.
        return (1.0 if all(t == PARAM for t in seq2) else 0.0), n_params


class Miner:
    """Cluster masked token lists into templates: ``add(tokens) -> (event id, template tokens)``.

    With ``strict_words``, two different plain words never match (``VM Paused`` and ``VM Resumed``
    are two events), until ``word_values`` templates differ in one word position alone: that
    position is then a variable (a user name) and those templates one event, the one with the
    lowest id; the others are its aliases, now and later.
    """

    def __init__(self, settings: MinerSettings | None = None):
        self.settings = settings or MinerSettings()
        self.settings.check()
        cls = _ConstantsDrain if self.settings.similarity == "constants" else Drain
        self.drain = cls(sim_th=self.settings.sim_th, depth=self.settings.depth,
                         max_children=self.settings.max_children, param_str=PARAM)
        self.drain.strict_words = self.settings.strict_words
        self.alias: dict[int, int] = {}  # cluster id -> the event it is part of
        self._aliased: dict[int, set[int]] = {}  # event -> the cluster ids aliased to it
        self._unified: dict[tuple, int] = {}  # merged key -> how many of its group were made one event
        self._siblings: dict[tuple, list[int]] = {}  # one word position left out -> clusters
        self._merged: set[tuple] = set()
        self._seen: dict[tuple, LogCluster] = {}  # masked tokens -> the cluster they matched last

    def event(self, cluster_id: int) -> int:
        return self.alias.get(cluster_id, cluster_id)

    def add(self, tokens: list[str]) -> tuple[int, tuple]:
        key = tuple(tokens)
        cluster = self._seen.get(key)
        if cluster is not None and cluster.log_template_tokens == key:
            # The same masked message again, and its cluster's template is the message itself:
            # Drain would match it there (every constant equal) and change nothing.
            cluster.size += 1
            event = self.alias.get(cluster.cluster_id, cluster.cluster_id)
            return event, (key if event == cluster.cluster_id else self.drain.id_to_cluster[event].log_template_tokens)
        drain = self.drain
        cluster = drain.tree_search(drain.root_node, tokens, drain.sim_th, False)
        if cluster is None:
            drain.clusters_counter += 1
            cluster = LogCluster(tokens, drain.clusters_counter)
            drain.id_to_cluster[cluster.cluster_id] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            if self.settings.strict_words:
                self._link(cluster)
        else:
            template = cluster.log_template_tokens
            if any(a != b for a, b in zip(template, tokens)):
                self._retemplate(cluster, tuple(a if a == b else PARAM for a, b in zip(template, tokens)))
            cluster.size += 1
        if len(self._seen) > 100_000:
            self._seen.clear()
        self._seen[key] = cluster
        event = self.alias.get(cluster.cluster_id, cluster.cluster_id)
        if event == cluster.cluster_id:
            return event, cluster.log_template_tokens
        return event, self.drain.id_to_cluster[event].log_template_tokens

    def match(self, tokens: list[str]) -> tuple[int, tuple] | None:
        """The event ``tokens`` fit, without learning from them (None: none fits)."""
        cluster = self.drain.match(" ".join(tokens), "fallback")
        if cluster is None:
            return None
        event = self.event(cluster.cluster_id)
        return event, self.drain.id_to_cluster[event].log_template_tokens

    def _keys(self, tokens) -> list[tuple]:
        """One key per word position: the template with that word left out (templates without another
        constant token have no siblings: lone words are not variables).

        The key holds the position, the length and polynomial hashes of the tokens before and after
        it, not the tokens themselves: a key of each position's slices made a template of n tokens
        cost n^2 references (a 20,000-token line took 3 GB, a 1 MB line more than the machine's
        memory). Keys live in this process only (rebuilt from the templates when a state loads), so
        Python's per-process string hash is fine; two different templates share a key with a
        probability of about n / 2^61."""
        constants = sum(t != PARAM for t in tokens)
        if constants < 2:
            return []
        n = len(tokens)
        h = [hash(t) & _HASH_MOD for t in tokens]
        before = [0] * (n + 1)  # before[i]: the hash of tokens[:i]
        for i in range(n):
            before[i + 1] = (before[i] * _HASH_BASE + h[i]) % _HASH_MOD
        after = [0] * (n + 1)  # after[i]: the hash of tokens[i:]
        for i in range(n - 1, -1, -1):
            after[i] = (after[i + 1] * _HASH_BASE + h[i]) % _HASH_MOD
        return [(i, n, before[i], after[i + 1]) for i, t in enumerate(tokens) if _is_word(t)]

    def _link(self, cluster, merge: bool = True) -> None:
        """Record ``cluster`` among the templates that differ from it in one word; merge a group
        that reaches ``word_values`` templates (or join one merged before)."""
        for key in self._keys(cluster.log_template_tokens):
            group = self._siblings.setdefault(key, [])
            group.append(cluster.cluster_id)
            if not merge:
                continue
            if key in self._merged or len(group) >= self.settings.word_values:
                self._merge(key, group)
                return

    def _set_alias(self, cluster_id: int, event: int) -> None:
        old = self.alias.get(cluster_id)
        if old is not None:
            self._aliased[old].discard(cluster_id)
        self.alias[cluster_id] = event
        self._aliased.setdefault(event, set()).add(cluster_id)

    def _merge(self, key: tuple, group: list[int]) -> None:
        """Make the templates of ``group`` one event, the lowest. A group merged before is one event
        already (a merge relabels every alias of an event it moves): its members but the first are not
        looked at again, nor is every alias (the clusters of each event are kept), so that a log of
        thousands of values of one word merges each in constant time, not in the time of all before."""
        self._merged.add(key)
        done = self._unified.get(key, 0)
        members = [group[0]] + group[done:] if done else group
        head = min(self.event(c) for c in members)
        for c in members:
            if self.event(c) != head:
                old = self.event(c)
                for k in list(self._aliased.get(old, ())):
                    self._set_alias(k, head)
                self._set_alias(c, head)
                self._set_alias(old, head)
        if head in self.alias:
            self._aliased[self.alias.pop(head)].discard(head)
        self._unified[key] = len(group)
        first = self.drain.id_to_cluster[head]
        i = key[0]
        if len(first.log_template_tokens) > i:
            tokens = list(first.log_template_tokens)
            tokens[i] = PARAM
            self._retemplate(first, tuple(tokens))

    def _retemplate(self, cluster: LogCluster, tokens: tuple) -> None:
        if isinstance(self.drain, _ConstantsDrain):
            self.drain.retemplate(cluster, tokens)
        else:
            cluster.log_template_tokens = tokens

    @property
    def clusters(self) -> list[LogCluster]:
        return sorted(self.drain.id_to_cluster.values(), key=lambda c: c.cluster_id)

    def events(self) -> list[tuple[int, tuple, int]]:
        """``(event id, template tokens, lines)`` of every event (aliases counted in their event)."""
        sizes: dict[int, int] = {}
        for c in self.drain.id_to_cluster.values():
            e = self.event(c.cluster_id)
            sizes[e] = sizes.get(e, 0) + c.size
        return [(e, self.drain.id_to_cluster[e].log_template_tokens, n) for e, n in sorted(sizes.items())]

    # --- state as plain JSON --------------------------------------------------------------------
    def state(self) -> dict:
        def node(n: Node) -> dict:
            return {"ids": list(n.cluster_ids), "children": {k: node(c) for k, c in n.key_to_child_node.items()}}

        return {"clusters": [{"id": c.cluster_id, "template": list(c.log_template_tokens), "size": c.size}
                             for c in self.clusters],
                "counter": self.drain.clusters_counter, "tree": node(self.drain.root_node),
                "aliases": [[c, e] for c, e in sorted(self.alias.items())],
                "settings": asdict(self.settings)}

    @classmethod
    def from_state(cls, state: dict, where: str = "parser state") -> "Miner":
        """Rebuild a miner from :meth:`state`'s dict (checked value by value; nothing is executed)."""

        def bad(what: str):
            return InputError(f"{what} (not a parser state written by seqrnn parse)", where)

        if not isinstance(state, dict):
            raise bad("expected a JSON object")
        raw = state.get("settings")
        if not isinstance(raw, dict) or set(raw) - set(MinerSettings.__dataclass_fields__):
            raise bad("bad miner settings")
        try:
            settings = MinerSettings(**raw)
            ok = (isinstance(settings.sim_th, (int, float)) and not isinstance(settings.sim_th, bool)
                  and all(type(getattr(settings, k)) is int for k in ("depth", "max_children", "word_values"))
                  and type(settings.strict_words) is bool and isinstance(settings.similarity, str))
            if not ok:
                raise bad("bad miner settings")
            settings.check()
        except (TypeError, InputError):
            raise bad("bad miner settings") from None
        miner = cls(settings)
        clusters = state.get("clusters")
        if not isinstance(clusters, list):
            raise bad("no cluster list")
        for c in clusters:
            if not (isinstance(c, dict) and type(c.get("id")) is int and c["id"] > 0
                    and isinstance(c.get("template"), list) and all(isinstance(t, str) for t in c["template"])
                    and type(c.get("size")) is int and c["size"] > 0):
                raise bad("bad cluster entry")
            if c["id"] in miner.drain.id_to_cluster:
                raise bad(f"cluster {c['id']} twice")
            cluster = LogCluster(c["template"], c["id"])
            cluster.size = c["size"]
            miner.drain.id_to_cluster[c["id"]] = cluster
        counter = state.get("counter")
        if type(counter) is not int or counter < max(miner.drain.id_to_cluster, default=0):
            raise bad("bad cluster counter")
        miner.drain.clusters_counter = counter

        def node(d, depth: int) -> Node:
            if (not isinstance(d, dict) or depth > settings.depth + 1 or not isinstance(d.get("ids"), list)
                    or not isinstance(d.get("children"), dict)):
                raise bad("bad prefix tree")
            if not all(type(i) is int and i in miner.drain.id_to_cluster for i in d["ids"]):
                raise bad("prefix tree names an unknown cluster")
            n = Node()
            n.cluster_ids = list(d["ids"])
            n.key_to_child_node = {str(k): node(v, depth + 1) for k, v in d["children"].items()}
            return n

        miner.drain.root_node = node(state.get("tree"), 0)
        aliases = state.get("aliases", [])
        if not (isinstance(aliases, list) and all(
                isinstance(a, list) and len(a) == 2 and all(type(x) is int and x in miner.drain.id_to_cluster for x in a)
                for a in aliases)):
            raise bad("bad aliases")
        for c, e in aliases:
            miner._set_alias(c, e)
        for c in miner.clusters:  # the groups of one-word siblings, from the templates
            miner._link(c, merge=False)
        miner._merged = {k for k, g in miner._siblings.items() if any(c in miner.alias for c in g)}
        return miner
