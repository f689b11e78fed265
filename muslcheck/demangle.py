"""Itanium C++ ABI demangling, in pure Python: ``demangle("_ZdlPvm") == "operator delete(void*, unsigned long)"``.

What ``explain`` needs to name the C++ symbols a report prints. It covers the grammar that exported
symbols use (nested and local names, templates, substitutions, operators, special names such as
vtables, typeinfo and thunks) and prints the way binutils' c++filt does; anything outside that subset
(expressions in template arguments, for instance) gives ``None`` rather than a guess. Running the
host's c++filt instead would make the output depend on what is installed, and binutils often is not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["demangle"]

_BUILTIN = {
    "v": "void", "w": "wchar_t", "b": "bool", "c": "char", "a": "signed char", "h": "unsigned char",
    "s": "short", "t": "unsigned short", "i": "int", "j": "unsigned int", "l": "long", "m": "unsigned long",
    "x": "long long", "y": "unsigned long long", "n": "__int128", "o": "unsigned __int128", "f": "float",
    "d": "double", "e": "long double", "g": "__float128", "z": "...",
}
_BUILTIN_D = {
    "d": "decimal64", "e": "decimal128", "f": "decimal32", "h": "half", "i": "char32_t", "s": "char16_t",
    "u": "char8_t", "a": "auto", "c": "decltype(auto)", "n": "decltype(nullptr)",
}
_OPERATORS = {
    "nw": "new", "na": "new[]", "dl": "delete", "da": "delete[]", "ps": "+", "ng": "-", "ad": "&", "de": "*",
    "co": "~", "pl": "+", "mi": "-", "ml": "*", "dv": "/", "rm": "%", "an": "&", "or": "|", "eo": "^",
    "aS": "=", "pL": "+=", "mI": "-=", "mL": "*=", "dV": "/=", "rM": "%=", "aN": "&=", "oR": "|=", "eO": "^=",
    "ls": "<<", "rs": ">>", "lS": "<<=", "rS": ">>=", "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=",
    "ge": ">=", "ss": "<=>", "nt": "!", "aa": "&&", "oo": "||", "pp": "++", "mm": "--", "cm": ",", "pm": "->*",
    "pt": "->", "cl": "()", "ix": "[]", "qu": "?", "st": "sizeof ", "sz": "sizeof ", "aw": "co_await",
}
# Literal template arguments printed without a cast, and their suffix.
_LITERAL_SUFFIX = {"i": "", "j": "u", "l": "l", "m": "ul", "x": "ll", "y": "ull"}
_STD_STRING = "std::basic_string<char, std::char_traits<char>, std::allocator<char> >"
_STD_CHAR_TRAITS = "<char, std::char_traits<char> >"
# The abbreviations of <substitution>: (full text, the name a constructor or destructor takes).
_STD_ABBREVIATIONS = {
    "a": ("std::allocator", "allocator"),
    "b": ("std::basic_string", "basic_string"),
    "s": (_STD_STRING, "basic_string"),
    "i": ("std::basic_istream" + _STD_CHAR_TRAITS, "basic_istream"),
    "o": ("std::basic_ostream" + _STD_CHAR_TRAITS, "basic_ostream"),
    "d": ("std::basic_iostream" + _STD_CHAR_TRAITS, "basic_iostream"),
}
_QUALIFIER_TEXT = {"K": " const", "V": " volatile", "r": " restrict"}


class _Unsupported(Exception):
    """The name is outside the covered grammar, or is not a valid mangling."""


# -- the tree ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    def text(self) -> str:
        return _declare(self, "")

    def last_name(self) -> str:
        """The name a constructor or destructor of this class takes."""
        return self.text()


@dataclass(frozen=True)
class _Name(_Node):
    name: str
    ctor_name: str | None = None
    special: bool = False  # a constructor, destructor or conversion operator: no return type

    def text(self) -> str:
        return self.name

    def last_name(self) -> str:
        return self.ctor_name if self.ctor_name is not None else self.name


@dataclass(frozen=True)
class _Qualified(_Node):
    """``scope::name``."""

    scope: _Node
    name: _Node

    def text(self) -> str:
        return f"{self.scope.text()}::{self.name.text()}"

    def last_name(self) -> str:
        return self.name.last_name()


@dataclass(frozen=True)
class _Template(_Node):
    name: _Node
    args: tuple[_Node, ...]

    def text(self) -> str:
        head = self.name.text()
        texts = [n.text() for n in _flattened(self.args)]
        inner = ", ".join(t for t in texts if t)
        # c++filt writes "> >", but an empty pack at the end leaves the ", " it removed as the last character
        last = " " if len(texts) > 1 and not texts[-1] else inner[-1:]
        return f"{head}{' ' if head.endswith('<') else ''}<{inner}{' ' if last == '>' else ''}>"

    def last_name(self) -> str:
        return self.name.last_name()


@dataclass(frozen=True)
class _Pack(_Node):
    """A template argument pack (``J ... E``): its elements, printed in place."""

    items: tuple[_Node, ...]

    def text(self) -> str:
        return _listed(self.items)


@dataclass(frozen=True)
class _Literal(_Node):
    value: str

    def text(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Pointer(_Node):
    target: _Node
    sigil: str  # "*", "&", "&&", " _Complex", " _Imaginary"


@dataclass(frozen=True)
class _Cv(_Node):
    target: _Node
    qualifiers: str  # " const", " const volatile", ...


@dataclass(frozen=True)
class _Function(_Node):
    result: _Node | None
    params: tuple[_Node, ...]
    suffix: str = ""  # " const", " &", " noexcept"

    def param_text(self) -> str:
        if len(self.params) == 1 and self.params[0] == _VOID:
            return "()"
        return f"({_listed(self.params)})"


@dataclass(frozen=True)
class _Array(_Node):
    element: _Node
    size: str


@dataclass(frozen=True)
class _MemberPointer(_Node):
    cls: _Node
    member: _Node


@dataclass(frozen=True)
class _Expansion(_Node):
    pattern: _Node

    def text(self) -> str:
        pack = _find_pack(self.pattern)
        if pack is None:
            return self.pattern.text() + "..."
        return _listed(tuple(_replace_node(self.pattern, pack, item) for item in pack.items))


def _flattened(nodes: tuple[_Node, ...]) -> list[_Node]:
    """Template arguments with the elements of packs in place; an empty pack stays as an empty _Pack."""
    out: list[_Node] = []
    for n in nodes:
        if isinstance(n, _Pack) and n.items:
            out += _flattened(n.items)
        else:
            out.append(n)
    return out


def _listed(nodes: tuple[_Node, ...]) -> str:
    """Comma-separated; an empty pack (or the expansion of one) adds nothing."""
    return ", ".join(t for t in (n.text() for n in nodes) if t)


def _find_pack(node: _Node) -> _Pack | None:
    if isinstance(node, _Pack):
        return node
    for f in fields(node):
        value = getattr(node, f.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, _Node) and not isinstance(child, _Expansion):
                found = _find_pack(child)
                if found is not None:
                    return found
    return None


def _replace_node(node: _Node, old: _Node, new: _Node) -> _Node:
    if node is old:
        return new
    changes: dict[str, object] = {}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, _Node):
            changes[f.name] = _replace_node(value, old, new)
        elif isinstance(value, tuple):
            changes[f.name] = tuple(_replace_node(v, old, new) if isinstance(v, _Node) else v for v in value)
    return replace(node, **changes)


@dataclass(frozen=True)
class _Special(_Node):
    """``vtable for X``, ``guard variable for X``, ``X::{lambda()#1}``: a prefix and the entity."""

    prefix: str
    entity: _Node
    suffix: str = ""

    def text(self) -> str:
        return f"{self.prefix}{self.entity.text()}{self.suffix}"


@dataclass(frozen=True)
class _Encoding(_Node):
    """A function: its name, its type (with the return type when the name is a template)."""

    name: _Node
    function: _Function

    def text(self) -> str:
        head = self.name.text() + self.function.param_text() + self.function.suffix
        return head if self.function.result is None else _with_result(self.function.result, head)


def _with_result(result: _Node, declarator: str) -> str:
    """A function's return type before its declarator: ``int& (*)(int)``, ``void (*(*)())()``."""
    if _declarator_inside(result):
        return _declare(result, declarator)
    return f"{_declare(result, '')} {declarator}"


def _declarator_inside(node: _Node) -> bool:
    """A function or array type (or a pointer to one) wraps the declarator: ``void (*f())()``."""
    while isinstance(node, (_Pointer, _Cv)):
        node = node.target
    return isinstance(node, (_Function, _Array, _MemberPointer))


_VOID = _Name("void")


def _joined(base: str, declarator: str) -> str:
    """``char`` and ``*`` make ``char*``; ``int`` and ``(*) [3]`` make ``int (*) [3]``."""
    if not declarator or declarator[0] in "*& ":
        return base + declarator
    return f"{base} {declarator}"


def _declare(node: _Node | None, declarator: str) -> str:
    """The C declaration of ``declarator`` with type ``node``, as c++filt writes it."""
    if node is None:
        return declarator
    if isinstance(node, _Pointer):
        target, sigil = node.target, node.sigil
        while sigil in ("&", "&&") and isinstance(target, _Pointer) and target.sigil in ("&", "&&"):
            sigil = "&" if "&" in (sigil, target.sigil) else "&&"  # reference collapsing: T& && is T&
            target = target.target
        return _declare(target, sigil + declarator)
    if isinstance(node, _Cv):
        if isinstance(node.target, _Function):  # a qualified function type (of a member)
            f = node.target
            return _declare(_Function(f.result, f.params, node.qualifiers + f.suffix), declarator)
        if isinstance(node.target, _Array):  # a const array is an array of const
            a = node.target
            return _declare(_Array(_Cv(a.element, node.qualifiers), a.size), declarator)
        if isinstance(node.target, _Cv):  # const applied to a const type (through a template parameter)
            words = set((node.qualifiers + node.target.qualifiers).split())
            merged = "".join(f" {w}" for w in ("const", "volatile", "restrict") if w in words)
            return _declare(_Cv(node.target.target, merged), declarator)
        return _declare(node.target, node.qualifiers + (" " if declarator[:1] in ("(", "[") else "") + declarator)
    if isinstance(node, _Function):
        inner = f"({declarator})" if declarator else ""
        assert node.result is not None
        return _with_result(node.result, f"{inner}{node.param_text()}{node.suffix}")
    if isinstance(node, _Array):
        if declarator.startswith("[") or declarator.endswith("]"):  # an array of arrays
            inner = f"{declarator}[{node.size}]"
        elif declarator:
            inner = f"({declarator}) [{node.size}]"
        else:
            inner = f"[{node.size}]"
        return _declare(node.element, inner)
    if isinstance(node, _MemberPointer):
        member = node.member
        if isinstance(member, _Cv) and isinstance(member.target, _Function):
            member = _Function(member.target.result, member.target.params, member.qualifiers + member.target.suffix)
        if isinstance(member, _Function):
            assert member.result is not None
            inner = f"({node.cls.text()}::*{declarator})"
            return _with_result(member.result, f"{inner}{member.param_text()}{member.suffix}")
        return _declare(member, f"{node.cls.text()}::*{declarator}")
    return _joined(node.text(), declarator)


# -- the parser --------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.subs: list[_Node] = []
        self.template_args: tuple[_Node, ...] | None = None
        self.in_type = 0  # > 0 while parsing a type: template args seen there are not the function's
        self.name_suffix = ""  # the cv and ref qualifiers of the last member function name
        # c++filt resolves a template parameter where it prints it: a substitution made of one, taken under
        # other template arguments than it was read under, would print differently (refused, not guessed).
        self.params_read = 0
        self.read_under: dict[int, tuple[_Node, ...] | None] = {}

    # primitives
    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.s[j] if j < len(self.s) else "\0"

    def take(self, prefix: str) -> bool:
        if self.s.startswith(prefix, self.i):
            self.i += len(prefix)
            return True
        return False

    def expect(self, prefix: str) -> None:
        if not self.take(prefix):
            raise _Unsupported(f"expected {prefix!r} at {self.i}")

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def number(self) -> int:
        negative = self.take("n")
        start = self.i
        while self.peek().isdigit():
            self.i += 1
        if start == self.i:
            raise _Unsupported("number expected")
        value = int(self.s[start:self.i])
        return -value if negative else value

    def seq_id(self) -> int:
        """``<seq-id> _`` after ``S`` or ``T``: none is 0, base-36 digits are n + 1."""
        if self.take("_"):
            return 0
        start = self.i
        while self.peek().isdigit() or "A" <= self.peek() <= "Z":
            self.i += 1
        if start == self.i:
            raise _Unsupported("seq-id expected")
        value = int(self.s[start:self.i], 36)
        self.expect("_")
        return value + 1

    def nested_type(self) -> _Node:
        self.in_type += 1
        try:
            return self.type()
        finally:
            self.in_type -= 1

    # <encoding>
    def encoding(self) -> _Node:
        if self.peek() in ("T", "G"):
            return self.special_name()
        self.name_suffix = ""
        name, template, special = self.name()
        suffix, self.name_suffix = self.name_suffix, ""
        if self.at_end() or self.peek() == "E":
            return name
        result = self.nested_type() if template and not special else None
        self.in_type += 1
        params = [self.type()]
        while not self.at_end() and self.peek() != "E":
            params.append(self.type())
        self.in_type -= 1
        return _Encoding(name, _Function(result, tuple(params), suffix))

    def special_name(self) -> _Node:
        two = self.s[self.i:self.i + 2]
        simple = {"TV": "vtable for ", "TT": "VTT for ", "TI": "typeinfo for ", "TS": "typeinfo name for "}
        if two in simple:
            self.i += 2
            return _Special(simple[two], self.nested_type())
        if self.take("Th"):
            self.number()
            self.expect("_")
            return _Special("non-virtual thunk to ", self.encoding())
        if self.take("Tv"):
            self.number()
            self.expect("_")
            self.number()
            self.expect("_")
            return _Special("virtual thunk to ", self.encoding())
        if self.take("Tc"):
            self.call_offset()
            self.call_offset()
            return _Special("covariant return thunk to ", self.encoding())
        if self.take("TC"):
            derived = self.nested_type()
            self.number()
            self.expect("_")
            base = self.nested_type()
            return _Special("construction vtable for ", base, f"-in-{derived.text()}")
        if self.take("TH"):
            return _Special("TLS init function for ", self.name()[0])
        if self.take("TW"):
            return _Special("TLS wrapper function for ", self.name()[0])
        if self.take("GV"):
            return _Special("guard variable for ", self.name()[0])
        if self.take("GR"):
            entity = self.name()[0]
            index = 0 if self.at_end() else self.seq_id()
            return _Special(f"reference temporary #{index} for ", entity)
        if self.take("GTt"):
            return _Special("transaction clone for ", self.encoding())
        if self.take("GTn"):
            return _Special("non-transaction clone for ", self.encoding())
        if self.take("GA"):
            return _Special("hidden alias for ", self.encoding())
        raise _Unsupported(f"special name {two!r}")

    def call_offset(self) -> None:
        if self.take("h"):
            self.number()
            self.expect("_")
        elif self.take("v"):
            self.number()
            self.expect("_")
            self.number()
            self.expect("_")
        else:
            raise _Unsupported("call offset")

    # <name>: the node, whether it ends in template args, whether it is a constructor, destructor or conversion
    def name(self) -> tuple[_Node, bool, bool]:
        c = self.peek()
        if c == "N":
            return self.nested_name()
        if c == "Z":
            return self.local_name()
        if c == "S" and self.peek(1) != "t":
            node = self.substitution()
            if self.peek() == "I":
                return self.with_template_args(node), True, False
            return node, False, False
        if c == "S":
            self.i += 2
            node = _Qualified(_Name("std"), self.unqualified_name(None))
        else:
            node = self.unqualified_name(None)
        if self.peek() == "I":
            self.subs.append(node)
            return self.with_template_args(node), True, _is_special(node)
        return node, False, _is_special(node)

    def with_template_args(self, node: _Node) -> _Node:
        args = self.template_args_list()
        if not self.in_type:
            self.template_args = args
        return _Template(node, args)

    def nested_name(self) -> tuple[_Node, bool, bool]:
        self.expect("N")
        qualifiers = self.cv_qualifiers()
        suffix = "".join(_QUALIFIER_TEXT[q] for q in "KVr" if q in qualifiers)
        if self.take("R"):
            suffix += " &"
        elif self.take("O"):
            suffix += " &&"
        node: _Node | None = None
        template = special = False
        params_before = self.params_read
        while not self.take("E"):
            c = self.peek()
            substituted = template = False
            if c == "S":
                if self.peek(1) == "t":
                    self.i += 2
                    part: _Node = _Name("std")
                else:
                    part = self.substitution()
                substituted = True
                node = part if node is None else _Qualified(node, part)
            elif c == "I":
                if node is None:
                    raise _Unsupported("template args without a name")
                node = self.with_template_args(node)
                template = True
            elif c == "T":
                part = self.template_param()
                node = part if node is None else _Qualified(node, part)
            elif c == "M":
                self.i += 1
                continue
            elif c == "\0":
                raise _Unsupported("unterminated nested name")
            else:
                part = self.unqualified_name(node)
                special = _is_special(part)
                node = part if node is None else _Qualified(node, part)
            if not substituted and self.peek() != "E":
                self.substitutable(node, params_before)
        if node is None:
            raise _Unsupported("empty nested name")
        if self.in_type:
            if suffix:
                raise _Unsupported("a qualified nested name as a type")
        else:
            self.name_suffix = suffix
        return node, template, special

    def local_name(self) -> tuple[_Node, bool, bool]:
        self.expect("Z")
        saved, saved_args = self.in_type, self.template_args
        self.in_type = 0
        function = self.encoding()
        self.in_type = saved
        if saved:  # a local name inside a template argument: the outer template's parameters apply again
            self.template_args = saved_args
        self.expect("E")
        if isinstance(function, _Encoding):  # the scope of a local name is written without its return type
            function = _Encoding(function.name, replace(function.function, result=None))
        if self.take("s"):
            self.discriminator()
            return _Qualified(function, _Name("string literal")), False, False
        if self.take("d"):
            index = 0 if self.peek() == "_" else self.number() + 1
            self.expect("_")
            entity, template, special = self.name()
            return _Qualified(_Qualified(function, _Name(f"{{default arg#{index + 1}}}")), entity), template, special
        entity, template, special = self.name()
        self.discriminator()
        return _Qualified(function, entity), template, special

    def discriminator(self) -> None:
        if self.take("__"):
            self.number()
            self.expect("_")
        elif self.peek() == "_" and self.peek(1).isdigit():
            self.i += 2

    def unqualified_name(self, scope: _Node | None) -> _Node:
        c, d = self.peek(), self.peek(1)
        if c.isdigit():
            node: _Node = self.source_name()
        elif c == "C" and d in ("1", "2", "3", "4", "5", "I"):
            if scope is None:
                raise _Unsupported("constructor outside a class")
            self.i += 2
            if d == "I":
                self.i += 1
                self.nested_type()
            node = _Name(_class_name(scope), special=True)
        elif c == "D" and d in ("0", "1", "2", "4", "5"):
            if scope is None:
                raise _Unsupported("destructor outside a class")
            self.i += 2
            node = _Name("~" + _class_name(scope), special=True)
        elif c == "U":
            node = self.unnamed_type()
        elif c == "L":
            self.i += 1  # internal linkage
            node = self.source_name()
            self.discriminator()
        elif "a" <= c <= "z":
            node = self.operator_name()
        else:
            raise _Unsupported(f"unqualified name at {self.i}")
        while self.take("B"):
            tag = self.source_name()
            node = _Name(f"{node.text()}[abi:{tag.text()}]", node.last_name(), _is_special(node))
        return node

    def source_name(self) -> _Name:
        length = self.number()
        if length <= 0 or self.i + length > len(self.s):
            raise _Unsupported("bad source name length")
        ident = self.s[self.i:self.i + length]
        self.i += length
        if ident.startswith("_GLOBAL_") and len(ident) > 9 and ident[8] in "._$" and ident[9] == "N":
            return _Name("(anonymous namespace)")
        return _Name(ident)

    def unnamed_type(self) -> _Node:
        if self.take("Ut"):
            index = 1 if self.peek() == "_" else self.number() + 2
            self.expect("_")
            return _Name(f"{{unnamed type#{index}}}")
        if self.take("Ul"):
            self.in_type += 1
            params = [self.type()]
            while self.peek() != "E":
                params.append(self.type())
            self.in_type -= 1
            self.expect("E")
            index = 1 if self.peek() == "_" else self.number() + 2
            self.expect("_")
            return _Name(f"{{lambda{_Function(None, tuple(params)).param_text()}#{index}}}")
        raise _Unsupported("unnamed type")

    def operator_name(self) -> _Node:
        two = self.s[self.i:self.i + 2]
        if two == "cv":
            self.i += 2
            return _Name("operator " + self.nested_type().text(), special=True)
        if two == "li":
            self.i += 2
            return _Name('operator"" ' + self.source_name().text())
        if self.peek() == "v" and self.peek(1).isdigit():
            self.i += 2
            return _Name("operator " + self.source_name().text())
        if two not in _OPERATORS:
            raise _Unsupported(f"operator {two!r}")
        self.i += 2
        symbol = _OPERATORS[two]
        return _Name("operator" + (" " if symbol[0].isalpha() else "") + symbol)

    def substitution(self) -> _Node:
        self.expect("S")
        c = self.peek()
        if c in _STD_ABBREVIATIONS:
            self.i += 1
            full, short = _STD_ABBREVIATIONS[c]
            return _Name(full, short)
        index = self.seq_id()
        if index >= len(self.subs):
            raise _Unsupported("substitution out of range")
        if index in self.read_under and self.read_under[index] is not self.template_args:
            raise _Unsupported("a template parameter substituted under other template arguments")
        return self.subs[index]

    def substitutable(self, node: _Node, params_before: int) -> None:
        if self.params_read > params_before:
            self.read_under[len(self.subs)] = self.template_args
        self.subs.append(node)

    def template_param(self) -> _Node:
        self.expect("T")
        index = self.seq_id()
        if self.template_args is None or index >= len(self.template_args):
            raise _Unsupported("template parameter out of range")
        self.params_read += 1
        return self.template_args[index]

    def template_args_list(self) -> tuple[_Node, ...]:
        self.expect("I")
        self.in_type += 1
        args = []
        while not self.take("E"):
            args.append(self.template_arg())
        self.in_type -= 1
        return tuple(args)

    def template_arg(self) -> _Node:
        c = self.peek()
        if c == "L":
            return self.literal()
        if c == "J":
            self.i += 1
            items = []
            while not self.take("E"):
                items.append(self.template_arg())
            return _Pack(tuple(items))
        if c in ("X", "\0"):
            raise _Unsupported("an expression, or the end")
        return self.type()

    def literal(self) -> _Node:
        self.expect("L")
        if self.take("_Z"):
            node = self.encoding()
            self.expect("E")
            return node
        kind = self.peek()
        if kind == "b" and self.peek(1) in ("0", "1") and self.peek(2) == "E":
            self.i += 3
            return _Literal("true" if self.s[self.i - 2] == "1" else "false")
        if kind in _LITERAL_SUFFIX:
            self.i += 1
            value = self.number()
            self.expect("E")
            return _Literal(f"{value}{_LITERAL_SUFFIX[kind]}")
        if kind in ("v", "z"):
            raise _Unsupported("literal")
        cast = self.nested_type().text()
        value = self.number()
        self.expect("E")
        return _Literal(f"({cast}){value}")

    def cv_qualifiers(self) -> str:
        start = self.i
        while self.peek() in ("r", "V", "K"):
            self.i += 1
        return self.s[start:self.i]

    # <type>
    def type(self) -> _Node:
        c, d = self.peek(), self.peek(1)
        params_before = self.params_read
        if c in _BUILTIN:
            self.i += 1
            return _Name(_BUILTIN[c])
        if c == "u":
            self.i += 1
            return self.source_name()
        if c == "D" and d in _BUILTIN_D:
            self.i += 2
            return _Name(_BUILTIN_D[d])
        if c == "D" and d == "F":  # _FloatN
            self.i += 2
            bits = self.number()
            self.take("_")
            return _Name(f"_Float{bits}")
        node: _Node
        if c in ("r", "V", "K"):
            qualifiers = self.cv_qualifiers()
            text = "".join(_QUALIFIER_TEXT[q] for q in "KVr" if q in qualifiers)
            # a qualified function type (a member's): the unqualified one is no substitution candidate
            node = _Cv(self.function_type() if self.peek() == "F" else self.type(), text)
        elif c in _SIGILS:
            self.i += 1
            node = _Pointer(self.type(), _SIGILS[c])
        elif c == "F" or (c == "D" and d in ("o", "x")):
            node = self.function_type()
        elif c == "A":
            self.i += 1
            size = "" if self.peek() == "_" else str(self.number())
            self.expect("_")
            node = _Array(self.type(), size)
        elif c == "M":
            self.i += 1
            cls = self.type()
            node = _MemberPointer(cls, self.type())
        elif c == "T":
            node = self.template_param()
            if self.peek() == "I":
                self.subs.append(node)
                node = _Template(node, self.template_args_list())
        elif c == "D" and d == "p":
            self.i += 2
            node = _Expansion(self.type())
        elif c == "S" and (d.isdigit() or d == "_" or "A" <= d <= "Z"):
            node = self.substitution()
            if self.peek() != "I":
                return node
            node = _Template(node, self.template_args_list())
        elif c == "S" and d != "t":
            node, template, _ = self.name()
            if not template:
                return node
        elif c in ("N", "Z", "S") or c.isdigit():
            node = self.name()[0]
        else:
            raise _Unsupported(f"type at {self.i}")
        self.substitutable(node, params_before)
        return node

    def function_type(self) -> _Node:
        suffix = ""
        if self.take("Do"):
            suffix = " noexcept"
        elif self.peek() == "D":
            raise _Unsupported("dynamic exception specification")
        self.expect("F")
        self.take("Y")
        result = self.type()
        params: list[_Node] = []
        while not self.take("E"):
            if self.peek() in ("R", "O") and self.peek(1) == "E":
                suffix = (" &" if self.peek() == "R" else " &&") + suffix
                self.i += 1
                continue
            params.append(self.type())
        return _Function(result, tuple(params) or (_VOID,), suffix)


_SIGILS = {"P": "*", "R": "&", "O": "&&", "C": " _Complex", "G": " _Imaginary"}


def _class_name(scope: _Node) -> str:
    """The name of a constructor or destructor; c++filt names one of an unnamed type after the enclosing class."""
    name = scope.last_name()
    if name.startswith("{unnamed type#") and isinstance(scope, _Qualified):
        return _class_name(scope.scope)
    return name


def _is_special(node: _Node) -> bool:
    return isinstance(node, _Name) and node.special


# Substitutions can nest so that a short name prints exponentially long ("A<B, B>" where B is "A<C, C>", ...).
MAX_TEXT = 64 * 1024


def _printed_size(node: _Node, memo: dict[int, int]) -> int:
    """About how many characters ``node`` prints as (each shared node counted every time it is printed)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, _Name):
        size = len(node.name)
    elif isinstance(node, _Literal):
        size = len(node.value)
    else:
        size = 8
        for f in fields(node):
            value = getattr(node, f.name)
            for child in value if isinstance(value, tuple) else (value,):
                if isinstance(child, _Node):
                    size += 2 + _printed_size(child, memo)
                elif isinstance(child, str):
                    size += len(child)
        if isinstance(node, _Expansion):
            pack = _find_pack(node.pattern)
            size *= max(1, len(pack.items)) if pack is not None else 1
    memo[key] = size
    return size


def demangle(symbol: str) -> str | None:
    """The C++ declaration ``symbol`` names, as c++filt prints it; None when it is not a mangled C++ name
    (or uses a part of the grammar this module does not cover)."""
    if not symbol.startswith("_Z"):
        return None
    name, dot, clones = symbol.partition(".")
    parser = _Parser(name[2:])
    try:
        node = parser.encoding()
        if not parser.at_end() or _printed_size(node, {}) > MAX_TEXT:
            return None
        text = node.text()
    except (_Unsupported, RecursionError):
        return None
    if dot:  # GCC's clones: ".isra.0", ".constprop.1", ".cold"
        groups: list[str] = []
        for part in clones.split("."):
            if part.isdigit() and groups:
                groups[-1] += f".{part}"
            else:
                groups.append(f".{part}")
        text += "".join(f" [clone {g}]" for g in groups)
    return text
