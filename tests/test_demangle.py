"""The pure-Python demangler against binutils' c++filt: the same text, or None, never a wrong name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muslcheck.demangle import MAX_TEXT, demangle
from muslcheck.elf import read_elf_file
from tests.support import unavailable

# What c++filt (binutils 2.40) prints for each, one grammar feature per line.
CXXFILT = [
    ("_ZdlPvm", "operator delete(void*, unsigned long)"),
    ("_Znwm", "operator new(unsigned long)"),
    ("_ZSt19__throw_logic_errorPKc", "std::__throw_logic_error(char const*)"),
    ("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm",
     "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::_M_create(unsigned long&, "
     "unsigned long)"),
    ("_ZNSsC1Ev", "std::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string()"),
    ("_ZNSdD0Ev", "std::basic_iostream<char, std::char_traits<char> >::~basic_iostream()"),
    ("_ZNSt8ios_base7failureB5cxx11C1EPKc", "std::ios_base::failure[abi:cxx11]::failure(char const*)"),
    ("_ZSt9has_facetISt8numpunctIcEEbRKSt6locale", "bool std::has_facet<std::numpunct<char> >(std::locale const&)"),
    ("_ZSt4moveIRiEONSt16remove_referenceIT_E4typeEOS2_",
     "std::remove_reference<int&>::type&& std::move<int&>(int&)"),
    ("_ZNK3Foo3barEv", "Foo::bar() const"),
    ("_ZNR3Foo3barEv", "Foo::bar() &"),
    ("_ZNO3Foo3barEv", "Foo::bar() &&"),
    ("_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo()"),
    ("_ZN3FooltIiEEbv", "bool Foo::operator< <int>()"),
    ("_Z1fPFvvE", "f(void (*)())"),
    ("_Z1fPFPFivEvE", "f(int (*(*)())())"),
    ("_Z1fPA3_i", "f(int (*) [3])"),
    ("_Z1fA2_A3_i", "f(int [2][3])"),
    ("_Z1fM3FooFviE", "f(void (Foo::*)(int))"),
    ("_Z1fM3Fooi", "f(int Foo::*)"),
    ("_Z1fPDoFvvE", "f(void (*)() noexcept)"),
    ("_Z1fPVKi", "f(int const volatile*)"),
    ("_Z1fIcLc65EEvv", "void f<char, (char)65>()"),
    ("_Z1fILb1EEvv", "void f<true>()"),
    ("_Z1fILin5EEvv", "void f<-5>()"),
    ("_Z1fIJicEEvv", "void f<int, char>()"),
    ("_Z1fIJEEvv", "void f<>()"),
    ("_Z1fIKA3_iEvRT_", "void f<int const [3]>(int const (&) [3])"),
    ("_ZZ4mainE1x", "main::x"),
    ("_ZGVZ4mainE1x", "guard variable for main::x"),
    ("_ZZ3fooIiEvvENKUlvE_clEv", "foo<int>()::{lambda()#1}::operator()() const"),
    ("_ZN3Foo3barUt_E", "Foo::bar::{unnamed type#1}"),
    ("_ZTCSd0_Si", "construction vtable for std::basic_istream<char, std::char_traits<char> >-in-"
                   "std::basic_iostream<char, std::char_traits<char> >"),
    ("_ZThn16_NSdD1Ev", "non-virtual thunk to std::basic_iostream<char, std::char_traits<char> >::~basic_iostream()"),
    ("_ZTv0_n24_NSdD0Ev", "virtual thunk to std::basic_iostream<char, std::char_traits<char> >::~basic_iostream()"),
    ("_ZTIPKc", "typeinfo for char const*"),
    ("_ZTSi", "typeinfo name for int"),
    ("_ZGTtNSt11logic_errorD1Ev", "transaction clone for std::logic_error::~logic_error()"),
    ("_ZNK3FoocviEv", "Foo::operator int() const"),
    ("_ZN3Foo3barEv.isra.0.constprop.1", "Foo::bar() [clone .isra.0] [clone .constprop.1]"),
]


@pytest.mark.parametrize(("mangled", "expected"), CXXFILT)
def test_as_cxxfilt_prints_it(mangled: str, expected: str) -> None:
    assert demangle(mangled) == expected


@pytest.mark.parametrize("name", ["memcpy", "_Z", "_Zgarbage", "_ZN3foo", "_ZN3foo3barEv_",
                                  "_Z1fIiEDTcl3barT_EES0_", ""])
def test_not_a_name_it_covers(name: str) -> None:
    """Not mangled, malformed, or an expression in a template argument: None, not a guess."""
    assert demangle(name) is None


def test_exponential_substitutions_are_refused() -> None:
    """Each type names the previous one twice: the text doubles with every few bytes of input."""
    name = "_Z1fP1AIiiE" + "".join(f"PS_IS{i:X}_S{i:X}_E" if i else "PS_IS_S_E" for i in range(0, 120, 2))
    assert len(name) < 1500
    assert demangle(name) is None
    small = demangle("_Z1fP1AIiiEPS_IS0_S0_E")
    assert small == "f(A<int, int>*, A<A<int, int>, A<int, int> >*)"
    assert MAX_TEXT >= 4096


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="_ZNSKVrtIEJLTDpRPOFMAvcijmdb0123456789", max_size=80))
def test_never_raises(tail: str) -> None:
    result = demangle("_Z" + tail)
    assert result is None or isinstance(result, str)


def _libstdcxx() -> Path:
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        path = Path(directory, "libstdc++.so.6")
        if path.is_file():
            return path
    unavailable("libstdc++.so.6 is not installed")


def test_every_libstdcxx_export_as_cxxfilt_prints_it() -> None:
    """The machine's own libstdc++ (about 6,000 C++ names) through c++filt and through demangle()."""
    cxxfilt = shutil.which("c++filt")
    if cxxfilt is None:
        unavailable("c++filt (binutils) is not installed")
    names = sorted({e.name for e in read_elf_file(_libstdcxx()).exports if e.name.startswith("_Z")})
    assert len(names) > 1000
    printed = subprocess.run([cxxfilt], input="\n".join(names) + "\n", capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert len(printed) == len(names)
    ours = [demangle(n) for n in names]
    wrong = [(n, want, got) for n, want, got in zip(names, printed, ours, strict=True)
             if got is not None and got != want]
    assert not wrong, wrong[:5]
    missed = [n for n, got in zip(names, ours, strict=True) if got is None]
    assert len(missed) <= len(names) // 100, missed[:20]
