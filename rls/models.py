"""No models: the app installs row-level security for the other apps' tables (rls.schema). The
module exists so that Django sends this app post_migrate."""
