"""Console executor: dnsdist's result rendering, error texts and delta() journal."""

from __future__ import annotations

import io
import re

import pytest
from lupa import luajit21

from luaapi.console import Executor, make_executor, render_delta, run_local_console

CANT = (
    "Command returned an object we can't print: Trying to cast a lua variable from \"{}\" to "
    '"N5boost8optionalINS_7variantINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEJSt10'
    "shared_ptrI15DownstreamStateEP11ClientStateSt13unordered_mapIS7_dSt4hashIS7_ESt8equal_"
    'toIS7_ESaISt4pairIKS7_dEEEEEEEE"\n'
)


class Server:
    def console_str(self) -> str:
        return "server1"


@pytest.fixture()
def executor() -> Executor:
    lua = luajit21.LuaRuntime(
        register_eval=False, register_builtins=False, unpack_returned_tuples=True
    )
    output: list[str] = []
    ex = make_executor(lua, output)

    def show(text: object) -> None:
        output.append(f"{text}\n")

    def get_thing() -> str:
        ex.mark_no_side_effect()
        return "thing"

    def change_and_get() -> None:
        ex.mark_no_side_effect()
        ex.mark_side_effect()

    def boom() -> None:
        raise ValueError("bad thing")

    g = lua.globals()
    g.show = show
    g.getThing = get_thing
    g.boom = boom
    g.changeAndGet = change_and_get
    g.srv = Server()
    lua.execute('function f() error("boom") end')
    return ex


@pytest.mark.parametrize(
    ("line", "reply"),
    # every reply here was read from dnsdist 1.7.3's console
    [
        ("1+1", "2\n"),
        ('"x"', "x\n"),
        ("0.1", "0.1\n"),
        ("1e20", "1e+20\n"),
        ("2^53", "9.007199254741e+15\n"),
        ("1/0", "inf\n"),
        ("1, 2", "1\n"),
        ("nil, 1", ""),
        ("nil", ""),
        ("x = 3", ""),
        ('show("a")', "a\n"),
        ('show("a") show("b")', "a\nb\n"),
        ('show("a") return 5', "5\n"),
        ("{a=1,b=2.5}", '{"a": 1, "b": 2.5}\n'),
        ("{}", "{}\n"),
        ("{1,2}", '{"1": 1, "2": 2}\n'),
        ('{a="3"}', '{"a": 3}\n'),
        ('{a=" 0x10 "}', '{"a": 16}\n'),
        ("{a=1/0}", '{"a": null}\n'),
        ("{a=0.1}", '{"a": 0.10000000000000001}\n'),
        ('{["a\\"b"]=1, ["\\n"]=2, [" "]=3}', '{"\\n": 2, " ": 3, "a\\"b": 1}\n'),
        ("return true", CANT.format("boolean")),
        ("true, 1", CANT.format("boolean")),
        ('{a="x"}', CANT.format("table")),
        ("{[true]=1}", CANT.format("table")),
        ("print", CANT.format("function")),
        ("foo(", "Error: [string \"foo(\"]:1: unexpected symbol near '<eof>': "),
        (
            "nosuch()",
            "Error: [string \"return nosuch()\"]:1: attempt to call global 'nosuch' (a nil value)"
            '\nstack traceback:\n\t[string "return nosuch()"]:1: in main chunk',
        ),
        ("srv", "server1\n"),
    ],
)
def test_rendering_matches_dnsdist(executor: Executor, line: str, reply: str) -> None:
    assert executor(line) == reply


def test_runtime_error_traceback_has_no_runner_frames(executor: Executor) -> None:
    # same shape as dnsdist's reply for f() defined in its config chunk
    assert executor("f()") == (
        'Error: [string "<python>"]:1: boom\nstack traceback:\n'
        "\t[C]: in function 'error'\n"
        '\t[string "<python>"]:1: in function <[string "<python>"]:1>'
    )
    assert executor("x = f()").endswith('\n\t[string "x = f()"]:1: in main chunk')


def test_python_exception_message_reaches_console(executor: Executor) -> None:
    reply = executor("boom()")
    assert reply.startswith("Error: bad thing\nstack traceback:\n")
    assert "xpcall" not in reply and "<python>" not in reply
    assert executor("return tostring(select(2, pcall(boom)))") == "bad thing\n"


def test_output_buffer_cleared_between_lines(executor: Executor) -> None:
    assert executor('show("a")') == "a\n"
    assert executor("x = 1") == ""


def test_delta_journal(executor: Executor) -> None:
    for line in ("1+1", "x=3", "", "getThing()", "nosuch()", "foo(", "return true"):
        executor(line)
    assert [line for _, line in executor.delta_lines] == ["1+1", "x=3"]
    text = executor.render_delta()
    assert re.fullmatch(
        r"-- \w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d \S+\n1\+1\n"
        r"-- \w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d \S+\nx=3\n",
        text,
    ), text
    assert render_delta([]) == ""


def test_side_effect_wins_over_no_side_effect(executor: Executor) -> None:
    executor.mark_side_effect()  # marks are reset at the start of each line
    executor("getThing()")
    assert executor.delta_lines == []
    executor("changeAndGet()")  # marks both: journalled, as dnsdist's setLuaSideEffect wins
    assert [line for _, line in executor.delta_lines] == ["changeAndGet()"]


def test_local_console(executor: Executor) -> None:
    stdin = io.StringIO('1+1\nshow("a")\nreturn true\nnosuch()\nfoo(\n\nquit\n2+2\n')
    out, err = io.StringIO(), io.StringIO()
    run_local_console(executor, stdin, out, err)
    assert out.getvalue() == "2\na\n"
    assert err.getvalue() == (
        CANT.format("boolean")
        + "[string \"return nosuch()\"]:1: attempt to call global 'nosuch' (a nil value)\n"
        'stack traceback:\n\t[string "return nosuch()"]:1: in main chunk\n'
        "[string \"foo(\"]:1: unexpected symbol near '<eof>'\n"
    )


def test_binding_errors_show_dnsdist_c_frames() -> None:
    """A binding's error reads as dnsdist's: the C function named when Lua knows its name, its
    address on the console's `return` (tail) call; no frame of pydist's Lua wrapper."""
    from luaapi.runtime import LuaConfig
    from pydist.registry import Registry
    lua = LuaConfig(Registry())
    ex = make_executor(lua.lua, lua.output)
    tail = ex('newPacketCache("x")')
    assert re.search(r"stack traceback:\n\t\[C\]: at 0x[0-9a-f]{12}$", tail), tail
    assert "<python>" not in tail and "<pydist>" not in tail
    named = ex('x = newPacketCache("x")')
    assert named.endswith("\t[C]: in function 'newPacketCache'\n"
                          '\t[string "x = newPacketCache("x")"]:1: in main chunk')
