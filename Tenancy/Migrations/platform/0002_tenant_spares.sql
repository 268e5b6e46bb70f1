-- Tenant schemas made ahead of need (TenantProvisioner.makeSpare): each holds every tenant
-- migration, owned by its own NOLOGIN role s_<random>. Provisioning claims one and renames
-- schema and role to t_<slug> instead of running every migration while the caller waits.
CREATE TABLE platform.tenant_spares (
    schema text PRIMARY KEY CHECK (schema ~ '^s_[a-z0-9]{20}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
