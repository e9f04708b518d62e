"""What `research.main` and `research.sweep` share as programs: flag parsing that reports a bad
flag in one line, start-up that quiets what is not an error, and errors mapped to exit codes
(research.train.errors.exit_code): a `research.errors.UserError` is one `error:` line on stderr
(its traceback too with --verbosity=1); any other exception is a bug and keeps its traceback.

Imports nothing heavy: the programs call it before JAX starts.
"""

import difflib
import os
import re
import sys
import traceback

from absl import flags, logging

from research import signals
from research.errors import USER_ERROR, ConfigError, UserError

FLAGS = flags.FLAGS


def one_line(error: BaseException) -> str:
  text = str(error).strip()
  if len(text) > 1 and text[0] == text[-1] == "'":  # KeyError / AttributeError repr-quote
    text = text[1:-1]
  text = " ".join(text.replace("\\n", "\n").split())
  return text or type(error).__name__


def verbose() -> bool:
  return FLAGS["verbosity"].present and FLAGS.verbosity >= 1


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with a bad flag or config override as one `error:` line and exit 2, and
  --help (which absl ends with exit status 1) ending with 0, as users and scripts expect."""
  try:
    return FLAGS(argv)
  except SystemExit as e:
    if e.code == 1 and any(a in HELP_FLAGS for a in argv[1:]):
      sys.exit(0)
    raise
  except Exception as e:  # noqa: BLE001  (flags.Error, and what ml_collections raises)
    if "--verbosity=1" in argv or "-v=1" in argv:
      traceback.print_exc()
    user_error = _user_error(e)  # a flag's parser raised it; absl wrapped it in its own
    message = one_line(user_error) if user_error else f"{one_line(e)} (see --helpshort)"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR)


def _user_error(error: BaseException | None) -> UserError | None:
  while error is not None and not isinstance(error, UserError):
    error = error.__cause__ or error.__context__
  return error


def _config_overrides(flag_name: str) -> dict[str, str | None]:
  """{PATH: VALUE} of the --FLAG.PATH=VALUE overrides, read as config_flags reads them (sys.argv
  with --flagfile expanded; the last of a path wins; VALUE None for a bare boolean)."""
  argv = FLAGS.read_flags_from_files(sys.argv, force_gnu=False)
  out = {}
  for i, arg in enumerate(argv):
    if re.match(rf"-{{1,2}}(no)?{re.escape(flag_name)}\.", arg):
      name, eq, value = arg.partition("=")
      if not eq:  # `--config.model.name resnet20`
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
      path = name.split(".", 1)[1]
      out.pop(path, None)
      out[path] = value
  return out


def allow_model_and_rule_keys(flag_name: str = "config") -> None:
  """Lets `--config.model.ARG=VALUE` set any option of the config's model and
  `--config.optimizer.ARG=VALUE` any argument of its rule, and makes an unknown key one line.

  A recipe lists only the options it sets, and config_flags refuses an override of a key the
  loaded ConfigDict lacks. This wraps the config flag's parser: once the file is loaded, and
  before config_flags applies the overrides, each overridden key is looked up. One that
  `config.model` or `config.optimizer` lacks but the model or rule named there (or by
  `--config.model.name` / `--config.optimizer.name`) takes
  (`research.train.validate.settable_keys`) is added with that argument's default and type,
  so that config_flags parses the value as it parses any field of that type (int, float,
  bool, str, tuple; a Python literal for an untyped one); the model or rule still checks the
  value. Any other unknown key is a ConfigError naming it, its section and the nearest keys.
  Only overridden keys are added: the config (and config.json) of a run without such
  overrides is unchanged, so existing workdirs resume.
  """
  parser = FLAGS[flag_name].parser
  load = parser.parse

  def parse(argument):
    config = load(argument)
    if hasattr(config, "unlocked"):  # a ConfigDict, not a file that failed to load
      _add_overridden_keys(config, flag_name, _config_overrides(flag_name))
    return config

  parser.parse = parse


def _add_overridden_keys(config, flag_name: str, overrides: dict[str, str | None]) -> None:
  from ml_collections import config_dict  # noqa: PLC0415
  from ml_collections.config_flags import config_path  # noqa: PLC0415

  for path in overrides:
    try:
      parts = config_path.split(path)
    except ValueError:
      continue  # config_flags reports it
    node, section = config, flag_name
    for i, part in enumerate(parts):
      if not isinstance(part, str) or not isinstance(node, config_dict.ConfigDict):
        break  # an index, or below a leaf: config_flags checks those
      if part in node:
        node, section = node[part], f"{section}.{part}"
        continue
      owner, extra = "", {}
      if i == 1 and parts[0] in ("model", "optimizer"):
        from research.train import validate  # noqa: PLC0415  (JAX, Flax: only when needed)

        name = overrides.get(f"{parts[0]}.name") or node.get("name")
        owner, extra = f" of {name}", validate.settable_keys(parts[0], name)
        if parts[0] == "model" and part in validate.PROGRAM_SET_OPTIONS:
          raise ConfigError(
            f"--{flag_name}.{path}: the program sets model.{part} itself (its device axis); "
            "leave it out"
          )
      if part not in extra:
        keys = sorted(set(node) | set(extra))
        near = difflib.get_close_matches(part, keys, n=3, cutoff=0.5)
        if near:  # '"a"', '"a" or "b"', '"a", "b" or "c"'
          quoted = [f'"{k}"' for k in near]
          choices = " or ".join(filter(None, [", ".join(quoted[:-1]), quoted[-1]]))
          hint = f". Did you mean {choices}?"
        else:
          hint = f"; its keys are {', '.join(keys)}"
        raise ConfigError(
          f"unknown config key --{flag_name}.{path}: {section}{owner} has no {part!r}{hint}"
        )
      field_type, default = extra[part]
      with node.unlocked():
        node[part] = config_dict.FieldReference(default, field_type=field_type)
      break


def _quiet_closed_loops(hook=sys.unraisablehook):
  """Orbax's failed background writes leave tensorstore callbacks that find its asyncio loop
  closed; each would print a traceback after the run's own error line."""

  def unraisable(info):
    if isinstance(info.exc_value, RuntimeError) and "Event loop is closed" in str(info.exc_value):
      return
    hook(info)

  sys.unraisablehook = unraisable


def start(config_flag: str = "config") -> None:
  """Logging, signal handlers and the config file's own load error, before any work."""
  if not FLAGS["verbosity"].present:
    # Orbax and TFDS log warnings (and Orbax the tracebacks of failed background writes) that
    # the run reports itself, in one line; --verbosity=0 or 1 shows them.
    logging.set_verbosity(logging.FATAL)
  signals.install_startup()
  if not verbose():
    _quiet_closed_loops()
  try:
    FLAGS[config_flag].value.keys()  # a config file that failed to load raises here
  except OSError as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    sys.exit(USER_ERROR)


def run_reporting_errors(fn, *args, **kwargs):
  """fn(*args, **kwargs); a documented error becomes one line and its exit code, anything else
  (a bug) is re-raised: Python prints its traceback and exits with 1."""
  from research.train import errors  # noqa: PLC0415  (JAX is up by now)

  try:
    return fn(*args, **kwargs)
  except Exception as e:  # noqa: BLE001  (mapped to documented codes; anything else re-raised)
    code = errors.exit_code(e)
    if code is None:
      raise
    if verbose():
      traceback.print_exc()
    interrupted = code >= 128
    print(
      one_line(e) if interrupted else f"error: {one_line(e)}",
      file=sys.stdout if interrupted else sys.stderr,
      flush=True,
    )
    if isinstance(e, errors.DiskFullError) and not verbose():
      # Nothing more can be written: exit-time handlers (TensorBoard's writers flushing again,
      # the checkpointer's threads) would only print tracebacks of the same ENOSPC after the
      # line. The checkpoints that are intact were committed before it was printed.
      sys.stderr.flush()
      os._exit(code)
    sys.exit(code)
