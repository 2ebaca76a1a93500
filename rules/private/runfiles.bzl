"""Runfiles paths, as a launcher resolves them under its runfiles directory."""

def rlocation(ctx, f):
    """The runfiles path of a file.

    Args:
      ctx: the rule context (its workspace name).
      f: the File.

    Returns:
      "_main/pkg/x" for the main repository's files, "repo/x" for an external repository's.
    """
    if f.short_path.startswith("../"):
        return f.short_path[3:]
    return ctx.workspace_name + "/" + f.short_path
