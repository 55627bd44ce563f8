"""The ``distill`` command line: pick a recipe, override keys, run stages. Heavy imports stay lazy so
``distill validate`` and ``distill ls`` answer in well under a second."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distill.pipeline.kinds import UNTIL
from distill.pipeline.lock import BusyError
from distill.recipe import RecipeError, load_recipe

EXIT_BAD_INPUT = 2
EXIT_BUSY = 75  # EX_TEMPFAIL: another `distill run` holds the run folder; try again later
EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer whose reader went away (`| head`)
TAKES_OVERRIDES = ("run", *UNTIL, "validate")


def recipes_root() -> Path:
    """The shipped recipes: ./recipes when run from a checkout, else the one beside the package."""
    here = Path.cwd() / "recipes"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "recipes"


def resolve_recipe(name: str) -> Path:
    """A path, or a shipped recipe's name (``demo``, ``gsm8k/hybrid``)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return recipes_root() / f"{name}.yaml"


def shipped_recipes() -> list[Path]:
    root = recipes_root()
    return sorted(p for p in root.rglob("*.yaml") if "accelerate" not in p.relative_to(root).parts)


def _recipe_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("recipe", nargs="?" if optional else None,
                   help="recipe file (recipes/demo.yaml) or shipped name (demo, gsm8k/hybrid)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value",
                   help="override any recipe key, e.g. mixes.seeds=[0,1] train.lr=1e-3")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distill",
        description="Measure where synthetic data stops paying: generate with a teacher, train students "
                    "on human / synthetic / hybrid mixes over a data ladder, evaluate, report saturation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a recipe's whole DAG (skips finished steps)")
    _recipe_args(p)
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: this machine; slurm: sbatch arrays with afterok dependencies")
    p.add_argument("--dry-run", action="store_true",
                   help="plan only: print the steps (for slurm, also the sbatch commands, with their scripts "
                        "in a temporary folder); nothing is written into the run folder")
    p.add_argument("--wait", action="store_true", help="slurm: wait for the submitted jobs to finish")
    for stage in UNTIL:
        q = sub.add_parser(stage, help=f"run the DAG up to and including the {stage} steps")
        _recipe_args(q)
        q.add_argument("--launcher", choices=("local", "slurm"), default="local", help="where steps run")
        q.add_argument("--dry-run", action="store_true", help="plan only")

    p = sub.add_parser("validate",
                       help="check a recipe (schema, ranges, cross-field rules, paths, eval task names, "
                                        "resources); loads no weights; --explain KEY documents a key")
    _recipe_args(p, optional=True)  # --explain KEY needs none: parse_args checks one of the two is given
    p.add_argument("--explain", metavar="KEY",
                   help="print a recipe key's description, type, default and allowed values (a section "
                        "lists its keys), e.g. train.lr, mixes.arms, world; takes no recipe")
    p.add_argument("--launcher", choices=("local", "slurm"), default=None,
                   help="check only the resources this launcher reads (default: every launcher's)")
    p = sub.add_parser("ls", help="list the shipped recipes")
    p = sub.add_parser("status", help="show a run's steps, their state and where their logs are")
    p.add_argument("run_dir", help="the run folder printed by `distill run` (runs/<name>)")
    p = sub.add_parser("report", help="(re)write a run's report from its finished evaluations")
    p.add_argument("run_dir", help="the run folder (runs/<name>)")
    p = sub.add_parser("compare", help="compare two evaluations of a run item by item (exact McNemar, paired "
                                       "bootstrap difference, minimum detectable difference)")
    p.add_argument("run_dir", help="the run folder (runs/<name>) or a report step's folder")
    p.add_argument("model_a",
                   help="teacher, floor, or ARM:N[:SEED] (e.g. synthetic:2000:0; lowest seed if none)")
    p.add_argument("model_b", help="the same forms as model_a")
    p = sub.add_parser("coverage",
                       help="two runs of one recipe with different seeds: does each run's per-cell "
                                        "interval hold the other run's cell mean (the rate over cells)")
    p.add_argument("run_a", help="a run folder (runs/<name>) or a report step's folder")
    p.add_argument("run_b", help="another run of the same recipe with other seeds (e.g. mixes.seeds=[2,3])")
    p.add_argument("--level", type=float, default=0.9,
                   help="interval level (default 0.9, the report's default)")
    sub.add_parser("serve", help="serve a local teacher through the OpenAI completions API "
                                 "(see `distill serve --help`)")
    return parser


def load_checked(args):
    """The recipe with its overrides, validated against the schema and against this machine."""
    from distill.recipe.checks import check_recipe

    path = resolve_recipe(args.recipe)
    recipe = load_recipe(path, args.overrides)
    check_recipe(recipe, str(path), launcher=getattr(args, "launcher", None))
    return recipe


def cmd_validate(args) -> int:
    if args.explain is not None:
        from distill.recipe.explain import explain

        print(explain(args.explain))
        return 0
    recipe = load_checked(args)
    from distill.pipeline.plan import plan

    axes = []
    if (m := recipe.mixes) is not None:
        sizes = {len(m.sizes_of(a)) for a in m.arms}
        ladder = f"{sizes.pop()} sizes" if len(sizes) == 1 else "their sizes"
        seeds = {len(m.seeds_of(a)) for a in m.arms}
        axes.append(f"{len(m.arms)} arms x {ladder} x "
                    + (f"{seeds.pop()} seeds" if len(seeds) == 1 else "their seeds")
                    + (f" x {len(recipe.teachers)} teachers (human-only arms once)" if recipe.teachers
                       else "")
                    + (" + convergence checks" if recipe.report.convergence else ""))
    if (g := recipe.generations) is not None:
        axes.append(f"{g.count} generations x {len(g.policies)} policies x {len(g.seeds)} seeds")
    runs = sum(s.stage == "train" for s in plan(recipe))  # shared steps (the human arm) counted once
    teacher = (", ".join(t.model or f"{t.name} built" for t in recipe.teachers) or recipe.teacher.model
               or "built")
    teacher = teacher if m is not None else "the previous generation's student"
    print(f"ok: {recipe.name} — {'; '.join(axes)} = {runs} student runs; world={recipe.world.kind}, "
          f"teacher={teacher}, backend={recipe.generation.backend}")
    return 0


def cmd_ls(args) -> int:
    root = recipes_root()
    for path in shipped_recipes():
        try:
            description = load_recipe(path).description.strip().splitlines()
        except RecipeError as exc:
            description = [f"INVALID: {exc}"]
        name = str(path.relative_to(root).with_suffix(""))
        print(f"{name:28s} {description[0] if description else ''}")
    return 0


def cmd_pipeline(args) -> int:
    from distill.pipeline.run import run_recipe

    recipe = load_checked(args)
    until = None if args.command == "run" else args.command
    return run_recipe(recipe, launcher=args.launcher, dry_run=args.dry_run, until=until,
                      wait=getattr(args, "wait", False))


def cmd_status(args) -> int:
    from distill.pipeline.run import show_status

    return show_status(Path(args.run_dir))


def cmd_report(args) -> int:
    from distill.pipeline.run import rerun_report

    return rerun_report(Path(args.run_dir))


def cmd_compare(args) -> int:
    from evals.report.compare import compare_text

    print(compare_text(args.run_dir, args.model_a, args.model_b))
    return 0


def cmd_coverage(args) -> int:
    from evals.report.compare import seed_sets_text

    print(seed_sets_text(args.run_a, args.run_b, args.level))
    return 0


COMMANDS = {"validate": cmd_validate, "compare": cmd_compare, "coverage": cmd_coverage, "ls": cmd_ls,
            "status": cmd_status, "report": cmd_report,
            **{name: cmd_pipeline for name in ("run", *UNTIL)}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # its own parser: `distill serve --help` must reach it
        from distill.generation.backends.serve import main as serve_main

        return serve_main(argv[1:]) or 0
    args = parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `distill status | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_BROKEN_PIPE
    except (FileNotFoundError, PermissionError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except OSError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # one line: what was running, and that a rerun resumes
        print(f"{exc or 'interrupted'}: finished steps are kept; rerun the same command to resume",
              file=sys.stderr)
        return getattr(exc, "exit_code", 130)


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Overrides may come anywhere, also after ``--launcher slurm`` or ``--dry-run``: argparse stops
    filling a positional list at the first option, so what it leaves over are the later overrides."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    later = [a for a in extra if not a.startswith("-")] if args.command in TAKES_OVERRIDES else []
    unknown = [a for a in extra if a not in later]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if later:
        args.overrides = [*args.overrides, *later]
    if args.command == "validate":
        _explain_or_recipe(args, parser)
    return args


def _explain_or_recipe(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``validate`` takes a recipe, or ``--explain KEY`` alone (the schema needs no recipe)."""
    if args.explain is None and args.recipe is None:
        parser.error("validate: the following arguments are required: recipe")
    if args.explain is not None and (args.recipe is not None or args.overrides):
        parser.error("validate: --explain KEY takes no recipe and no overrides")


if __name__ == "__main__":
    sys.exit(main())
