-- Every change of a tenant's registry row is announced on commit, so that each server process
-- drops its cached copy at once (TenantChangeListener) instead of waiting for the cache to age.
CREATE FUNCTION platform.tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linli_tenants', CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER tenant_changed AFTER UPDATE OR DELETE ON platform.tenants
    FOR EACH ROW EXECUTE FUNCTION platform.tenant_changed();
